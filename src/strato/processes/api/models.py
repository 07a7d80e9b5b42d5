"""Request bodies of OGC API - Processes (execute.yaml), as pydantic models so that they
appear in the OpenAPI document; the inputs themselves are checked against the process's
description (strato.processes.model.validation), which names the bad input."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SubscriberIn(BaseModel):
    successUri: str | None = Field(None, max_length=2048)
    inProgressUri: str | None = Field(None, max_length=2048)
    failedUri: str | None = Field(None, max_length=2048)


class OutputIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    transmissionMode: Literal["value", "reference"] = "value"


class ExecuteIn(BaseModel):
    # Other members (a draft's "mode", a client's extras) are ignored, as the standard lets.
    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, OutputIn] | None = None
    response: Literal["raw", "document"] = "raw"
    subscriber: SubscriberIn | None = None
