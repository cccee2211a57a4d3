"""People log in: the node as an OpenID Connect relying party, server-side sessions and CSRF.

config.py (the [login] section), oidc.py (discovery, PKCE, private_key_jwt, ID token checks),
store.py (sessions and started logins in SQLite), middleware.py (cookie -> session, CSRF),
routes.py (/login, /login/callback, /logout, /login/me), session.py (the helpers pages use),
devop.py (the development OpenID Provider in tools/dev-op).
"""
