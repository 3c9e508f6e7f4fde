"""A Model Context Protocol server made with the official `mcp` SDK (FastMCP), over Streamable HTTP on
127.0.0.1:<port>/mcp, with one tool: `get_weather(city)`. Run: python mcp_weather.py <port>"""
import sys

from mcp.server.fastmcp import FastMCP

server = FastMCP("weather", host="127.0.0.1", port=int(sys.argv[1]), log_level="WARNING")


@server.tool()
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}, 22 degrees"


if __name__ == "__main__":
    server.run(transport="streamable-http")
