"""Where a dataset build's per-item work runs: in this process, in local worker processes, or on a Ray cluster.

    for position, result in run_tasks(tasks, worker, engine="ray", num_workers=8):
        ...   # results arrive as they finish, in any order; `position` is the task's index in `tasks`

`worker` is a picklable callable `worker(task) -> result` that builds its heavy state (face detector, landmarker,
emotion model) on its first call, so each process or actor pays the start-up once, not per item.

- `engine="local"`: `num_workers == 1` runs here, one task after the other; more start that many processes
  ("spawn": onnxruntime and torch thread pools are not fork-safe once initialised). A worker process that dies (a
  kill -9, the OOM killer) ends the run with `EngineError` instead of hanging: what finished is kept by the caller.
- `engine="ray"`: Ray Data, as its docs show for stateful transforms: the tasks become a dataset of one block
  each, and `map_batches` with a callable class on an actor pool (`ActorPoolStrategy(size=num_workers)`) runs
  them, one CPU per actor. Ray Data restarts an actor that dies and retries its task (its defaults for actor pools:
  `max_restarts=-1`, `max_task_retries=-1`), so a killed worker costs one task's time. One task per block keeps a
  retry to that one task. The results stream back to this process (the driver), which writes them: the output
  folder only has to be on the driver's machine; the videos must be readable at the same path on every node.
  Joins the cluster at `ray_address` ("auto": the one `ray start` made on this machine), or the cluster this
  process is already connected to, or starts a local one with `num_workers` CPUs.

Each worker runs its inference on `cpu_count // num_workers` threads (at least one; one per Ray actor), unless
FACETRACK_NUM_THREADS says otherwise, so workers do not fight over the cores.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from typing import Any

ENGINES = ("local", "ray")
RAY_INSTALL = 'pip install "facetrack-mm[ray]"'


class EngineError(RuntimeError):
    """The engine could not run the tasks (a worker process died, Ray is missing or unreachable)."""


def run_tasks(
    tasks: list[Any], worker: Callable[[Any], Any], engine: str = "local", num_workers: int | None = None,
    ray_address: str | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield `(position, worker(tasks[position]))` for every task, as each finishes (see the module docstring).
    num_workers: processes (local; None: 1) or actors (ray; None: one per CPU of the cluster)."""
    check_engine(engine, num_workers)
    if not tasks:
        return iter(())
    if engine == "ray":
        return _run_on_ray(tasks, worker, num_workers, ray_address)
    num_workers = num_workers or 1
    if num_workers == 1:
        return ((position, worker(task)) for position, task in enumerate(tasks))
    return _run_in_processes(tasks, worker, num_workers)


def check_engine(engine: str, num_workers: int | None = None) -> None:
    """ValueError for an unknown engine or a worker count below 1; EngineError when Ray is asked for but missing."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 1):
        raise ValueError(f"the number of workers must be a whole number >= 1, got {num_workers!r}")
    if engine == "ray":
        check_ray_installed()


def check_ray_installed() -> None:
    """EngineError naming the install step when Ray Data cannot be imported."""
    try:
        import ray.data  # noqa: F401
    except ImportError as error:
        raise EngineError(f"--engine ray needs Ray Data, which is not installed ({error}): {RAY_INSTALL}") from None


def _set_threads(num_threads: int) -> None:
    os.environ.setdefault("FACETRACK_NUM_THREADS", str(max(1, num_threads)))


# ------------------------------------------------------------------------------------------- local processes
_PROCESS_WORKER: Callable[[Any], Any] | None = None


def _install_worker(worker: Callable[[Any], Any], num_threads: int) -> None:
    global _PROCESS_WORKER
    _set_threads(num_threads)
    _PROCESS_WORKER = worker


def _run_installed(task: Any) -> Any:
    return _PROCESS_WORKER(task)


def _run_in_processes(tasks: list[Any], worker, num_workers: int) -> Iterator[tuple[int, Any]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    threads = (os.cpu_count() or 1) // num_workers
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_install_worker,
                             initargs=(worker, threads)) as pool:
        futures = {pool.submit(_run_installed, task): position for position, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BrokenProcessPool:
            raise EngineError(
                "a worker process died (killed, or out of memory); what finished is kept: run the same build again "
                "to go on from there"
            ) from None
        finally:
            for future in futures:
                future.cancel()


# ------------------------------------------------------------------------------------------------------- Ray
class RayTaskActor:
    """The callable class Ray Data's actors run (`map_batches`): one worker per actor, built on its first task."""

    def __init__(self, worker: Callable[[Any], Any]):
        _set_threads(1)  # one CPU per actor
        self.worker = worker

    def __call__(self, batch: dict) -> dict:
        results = [pickle.dumps(self.worker(pickle.loads(task))) for task in batch["task"]]
        return {"position": batch["position"], "result": results}


def _run_on_ray(tasks: list[Any], worker, num_workers: int | None, ray_address: str | None
                ) -> Iterator[tuple[int, Any]]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        try:
            if ray_address:
                ray.init(address=ray_address, include_dashboard=False)
            else:
                ray.init(num_cpus=num_workers or os.cpu_count() or 1, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = f"the Ray cluster at {ray_address}" if ray_address else "a local Ray cluster"
            raise EngineError(f"could not start or join {where}: {str(error).splitlines()[0]}") from None
    try:
        num_workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the build shows its own progress
        items = [{"position": position, "task": pickle.dumps(task)} for position, task in enumerate(tasks)]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            RayTaskActor,
            fn_constructor_kwargs={"worker": worker},  # Ray pickles it to each actor
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=num_workers),
            num_cpus=1,
        )
        try:
            for row in dataset.iter_rows():
                yield int(row["position"]), pickle.loads(row["result"])
        except (ray.exceptions.RayError, ray.data.exceptions.SystemException,
                ray.data.exceptions.UserCodeException) as error:
            cause = error
            while cause.__cause__ is not None:  # Ray Data wraps the error that stopped it
                cause = cause.__cause__
            line = next((line for line in str(cause).splitlines() if line.strip()), type(cause).__name__)
            raise EngineError(
                f"Ray could not finish the build ({type(cause).__name__}: {line.strip()[:300]}); is facetrack-mm "
                "installed on every node? What finished is kept: run the same build again to go on"
            ) from None
    finally:
        if started_here:
            ray.shutdown()
