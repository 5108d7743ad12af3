import json

from starlette.responses import JSONResponse as StarletteJSONResponse

from stackling.web.responses import JSONResponse


def test_renders_what_starlette_renders() -> None:
    body = {"servers": [{"id": "x", "name": "vm-é", "progress": 0, "locked": False,
                         "fault": None, "flavor": {"ram": 512, "ratio": 1.5},
                         "tags": ["a", "b"], "addresses": {}}],
            "servers_links": []}
    assert JSONResponse(body).body == StarletteJSONResponse(body).body


def test_non_string_keys_become_strings_as_json_dumps_makes_them() -> None:
    body = {1: "one", "nested": {2: [True, None]}}
    assert json.loads(JSONResponse(body).body) == json.loads(json.dumps(body))


def test_what_orjson_cannot_render_falls_back_to_the_standard_encoder() -> None:
    body = {"big": 2 ** 70}
    assert JSONResponse(body).body == b'{"big":1180591620717411303424}'
