"""socialcare: social-media mentions become cases with SLA timers in Slack and Telegram."""
