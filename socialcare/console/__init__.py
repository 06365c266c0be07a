"""The web console: the live wallboard, case pages, reports and sign-in, served by the
built-in aiohttp server (see `socialcare.console.routes`)."""
