"""The pipelines capability's settings section: ``[pipelines]`` in strato.toml,
``STRATO_PIPELINES_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from strato.settings import Section, Settings


class PipelinesSettings(Section):
    key: ClassVar[str] = "pipelines"

    search_paths: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories searched for pipelines (each pipeline a directory with "
        "pipeline.yaml), in order; the first holding a name@version wins.",
    )
    exec_pipelines: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Pipelines (name or name@version) whose templates may use the `exec` "
        "directive (Python run inside the runner); refused for every other.",
    )
    project_root: Path | None = Field(
        None,
        description="Where runs' project directories are created when a config names none; "
        "default <data_dir>/pipelines/projects.",
    )
    backend: Literal["local", "slurm", "jobs"] = Field(
        "local",
        description="Where tasks run: local (subprocesses), slurm (sbatch) or jobs (jobs "
        "of strato's job engine, on its executor).",
    )
    cpus: int | None = Field(
        None, ge=1, description="CPUs the local backend hands out at once; default all."
    )
    mem_mb: int | None = Field(
        None, ge=1, description="Memory (MB) the local backend hands out at once; default all."
    )
    slurm_partition: str | None = Field(None, description="sbatch --partition.")
    slurm_account: str | None = Field(None, description="sbatch --account.")
    slurm_poll: float = Field(
        1.0, gt=0, description="Seconds between the Slurm monitor's squeue/sacct calls."
    )
    archive_to: Path | None = Field(
        None,
        description="Where finished runs' project directories are archived (a post-run "
        "step); none: not archived unless the pipeline asks.",
    )
    smtp_url: str | None = Field(
        None, description="smtp://host:port for run notifications; none: none sent."
    )
    mail_from: str = Field("strato@localhost", description="Sender of run notifications.")
    retry_first: float = Field(
        1.0, ge=0, description="Seconds before a failed task's first retry; doubling after."
    )
    retry_cap: float = Field(60.0, ge=0, description="The longest wait before a task's retry.")
    kill_grace: float = Field(
        5.0,
        ge=0,
        description="Seconds between SIGTERM and SIGKILL to a local task's process group "
        "when it is cancelled or runs out of walltime.",
    )

    node_name: str | None = Field(
        None,
        description="This server's name among those sharing the database (each drives the "
        "runs it holds a lease on; a server started again under its name takes its runs "
        "back at once); default the host's name. Distinct for each server or worker.",
    )
    lease_seconds: float = Field(
        30.0,
        ge=0.5,
        description="A server or worker silent this long (crashed, cut off) loses the runs "
        "it drove to another; renewed every third of it.",
    )
    driver: Literal["server", "celery"] = Field(
        "server",
        description="Who drives runs: the servers themselves, or Celery workers "
        "(`strato pipelines worker`, with `strato scheduler` finding runs nobody drives).",
    )
    celery_broker: str | None = Field(
        None, description="The Celery broker of driver = celery (redis://, amqp://)."
    )
    celery_queue: str = Field("strato.pipelines", description="The Celery queue runs go to.")
    sweep_seconds: float = Field(
        10.0,
        gt=0,
        description="How often `strato scheduler` looks for runs nobody drives.",
    )

    max_config_bytes: int = Field(
        1 << 20,
        ge=1024,
        description="Largest config a run may be submitted with (the body of "
        "/api/v1/new-run/, WES's workflow_params), in bytes.",
    )
    template_env: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Variables of the server's environment that templates may read with "
        "getenv() when a run is submitted to the server; none by default.",
    )
    wes_attachments: bool = Field(
        False,
        description="Accept workflow_attachment files in WES run requests (written into "
        "the run's project directory); refused by default.",
    )

    @field_validator("search_paths", "exec_pipelines", "template_env", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        # STRATO_PIPELINES_SEARCH_PATHS=/a,/b
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def projects_in(self, settings: Settings) -> Path:
        return self.project_root or settings.data_dir / "pipelines" / "projects"
