"""The domain: cases, their life cycle, SLA policy, ingest pipeline and metrics.

Nothing here imports a transport, a database driver or a messenger SDK; the outside
world is reached through the protocols in `socialcare.bot.ports`.
"""
