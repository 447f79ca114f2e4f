"""The training's progress bar on a terminal (a Trainer callback)."""

from __future__ import annotations


def training_progress():
    """A Trainer callback drawing a progress bar of the training steps on a terminal (rank 0 only; nothing
    where stdout is not a terminal, e.g. a log file or a Prefect worker, which gets the stage lines)."""
    import sys

    from transformers import TrainerCallback

    class StepBar(TrainerCallback):
        def __init__(self):
            self.bar, self.task = None, None

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero or not sys.stdout.isatty():
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            steps = TextColumn("{task.completed}/{task.total} steps")
            self.bar = Progress(
                TextColumn("      training"),
                BarColumn(),
                steps,
                TextColumn("{task.fields[loss]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self.task = self.bar.add_task("train", total=state.max_steps, completed=state.global_step, loss="")
            self.bar.start()

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "loss" in logs:
                self.bar.update(self.task, loss=f"loss {float(logs['loss']):.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.stop()
                self.bar = None

    return StepBar()
