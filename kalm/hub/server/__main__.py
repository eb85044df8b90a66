"""``python -m kalm.hub.server``: serve a local hub (the options of ``kalm hub serve``)."""

from kalm.hub.server.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
