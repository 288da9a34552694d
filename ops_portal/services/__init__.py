"""The service layer: every rule and every commit of Ops Portal lives here."""
