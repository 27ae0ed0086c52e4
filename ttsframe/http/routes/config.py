"""``GET``/``PUT /config``: the settings that can change while the server runs."""

from __future__ import annotations

from typing import Any

from litestar import get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from ttsframe.assembly import Services
from ttsframe.http.openapi import errors


@get("/config", operation_id="get_config", summary="Current server configuration",
     tags=["config"])
async def get_config(services: NamedDependency[Services]) -> dict[str, Any]:
    """The editable keys at the top level, plus ``config_file`` and the settings that
    need a restart (``restart_required``). Keys and plugin sections are never shown."""
    return services.config_editor.view()


@put("/config", operation_id="update_config", summary="Change server configuration",
     tags=["config"], responses=errors(400, 409, 413, 507))
async def update_config(data: JSONBody[dict[str, Any]], services: NamedDependency[Services]
                        ) -> dict[str, Any]:
    """Applies at once and is written to the config file; an unknown key or a wrong type
    is a 400 that changes nothing."""
    return await services.config_editor.update(data)


ROUTES = [get_config, update_config]
