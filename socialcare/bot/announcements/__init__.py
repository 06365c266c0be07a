"""Announcements: one notice to every service channel at once — the team's chats, other
audiences' Slack channels and Telegram chats, e-mail and signed webhooks — with read
receipts, a life cycle (active, corrected, withdrawn, expired) and the official answer
it gives offered on the cards of the cases it answers.

Modules: `audiences` (who is reached, from the config), `model`, `ports`, `service`
(the commands), `delivery` (the durable, per-audience outbox), `views` (what a chat
copy, a mail, a webhook and the status say), `official` (matching cases), `figures`
(reports).
"""
