"""SFU adapters: join tokens, E2EE keys and verified webhooks for the live-session services.

``base`` holds the SFU-neutral interface and rules; ``livekit`` the LiveKit adapter; ``config``
the ``[sfu]`` settings.
"""
