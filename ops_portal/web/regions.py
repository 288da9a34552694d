"""What else a page shows that an action on one of its cards changes: each page (by its
endpoint) names the out-of-band regions it has, and an action's htmx answer carries exactly
those of the page it was sent from (htmx names it in HX-Current-URL). A region the page lacks
would be an out-of-band swap with no target: an error in the browser, and wasted work."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from flask import current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

# Renders a page's regions for the booking acted on: (booking, the page's view arguments, its
# query arguments) -> HTML of out-of-band elements.
Regions = Callable[[object, dict, MultiDict], str]
PAGE_REGIONS: dict[str, Regions] = {}
# How each page draws its cards (the card partial's options: `compact`, `timeline_open`,
# `card_heading`), so an action's answer draws the card as the page around it does.
PAGE_CARDS: dict[str, dict[str, bool | int]] = {}


def page_regions(*endpoints: str) -> Callable[[Regions], Regions]:
    """Registers the regions the pages at these endpoints have."""

    def register(render: Regions) -> Regions:
        for endpoint in endpoints:
            PAGE_REGIONS[endpoint] = render
        return render

    return register


def page_cards(*endpoints: str, **flags: bool | int) -> None:
    """Registers how the pages at these endpoints draw their cards."""
    for endpoint in endpoints:
        PAGE_CARDS[endpoint] = flags


def sending_page() -> tuple[str, dict, MultiDict]:
    """The page the action was sent from: its endpoint ("" for a page this app does not know,
    or none named), view arguments and query arguments."""
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    path = page.path.removeprefix(request.script_root) or "/"
    try:
        urls = current_app.url_map.bind_to_environ(request.environ)
        endpoint, view_args = urls.match(path, method="GET")
    except HTTPException:  # not a page of this app, or one that redirects
        return "", {}, MultiDict()
    return endpoint, view_args, MultiDict(parse_qsl(page.query, keep_blank_values=True))


def regions_of_sending_page(booking) -> str:
    """The out-of-band regions of the page the action was sent from."""
    endpoint, view_args, query = sending_page()
    render = PAGE_REGIONS.get(endpoint)
    return render(booking, view_args, query) if render else ""


def cards_of_sending_page() -> dict[str, bool | int]:
    """The card partial's flags on the page the action was sent from."""
    return PAGE_CARDS.get(sending_page()[0], {})
