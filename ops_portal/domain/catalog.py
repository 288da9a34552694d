"""What the marketplace offers: the services a customer picks from on the booking form."""

SERVICES: tuple[str, ...] = (
    "Home cleaning",
    "Deep cleaning",
    "Window cleaning",
    "Plumbing",
    "Leaking tap",
    "Blocked drain",
    "Electrical repair",
    "Boiler service",
    "Handyman repairs",
    "Furniture assembly",
    "Tiling",
    "Painting",
)
