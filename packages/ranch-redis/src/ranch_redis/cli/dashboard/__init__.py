"""``ranch dashboard``: a web page of the registered backlogs, their top keys and controls.

``state.py`` reads what the page shows; ``server.py`` serves the page and
its JSON API with the security rules (loopback by default, a token for
anything else and for every state change, POST only, ``--read-only``);
``page.html`` is the page itself (no framework, no external resource).
"""
