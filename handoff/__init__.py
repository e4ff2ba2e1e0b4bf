"""The agent side: aiohttp service with the agent API and the web chat page."""
