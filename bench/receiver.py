"""A bare ASGI app answering 204 to every request: the webhook bench's receiver (`uvicorn bench.receiver:app`).
It imports nothing else so that it starts at once."""


async def app(scope, receive, send) -> None:  # noqa: ANN001
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})
