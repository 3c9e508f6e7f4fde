"""A Model Context Protocol server made with the official `mcp` SDK (FastMCP), over Streamable HTTP on
127.0.0.1:<port>/mcp, with one tool, `get_weather(city)`, a resource `weather://station` (text) and a resource
template `crm://customer/{caller_id}` (a JSON object).

  server = WeatherMcp()     starts it as a subprocess on a free port (server.url); server.stop()
  python mcp_weather.py <port>
"""
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request


class WeatherMcp:
    def __init__(self):
        from conftest import free_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url, timeout=1)
                return
            except urllib.error.HTTPError:
                return  # it answers (a GET without a session is refused)
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the MCP server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


if __name__ == "__main__":
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("weather", host="127.0.0.1", port=int(sys.argv[1]), log_level="WARNING")

    @server.tool()
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}, 22 degrees"

    @server.resource("weather://station", name="station")
    def station() -> str:
        return "Orly"

    @server.resource("crm://customer/{caller_id}", name="customer", mime_type="application/json")
    def customer(caller_id: str) -> str:
        import json
        return json.dumps({"customer_name": "Ann Example", "caller": caller_id})

    server.run(transport="streamable-http")
