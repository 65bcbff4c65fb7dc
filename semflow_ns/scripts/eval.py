"""``semflow-eval``: `ns-eval` for Semantic Flow runs, with the label-subset protocol of the paper.

`ns-eval --load-config RUN/config.yml` already reports PSNR, SSIM, mIoU, total accuracy and
class-average accuracy (per image, then averaged; METHOD.md §4.1) over the run's evaluation images.
`semflow-eval` writes the same JSON and adds:

- ``frames``: the 0-based video frame of every evaluated image (held-out views: the frame at their
  time), so results can be matched to label subsets without the official code's 1-based mix-up;
- when the run trained on a label subset (``--label-frames``), ``results_unlabelled`` and
  ``frames_unlabelled``: the same metrics on the training frames whose labels were withheld
  (the semantic-completion / tracking protocol), scored against their ground truth;
- ``--eval-source``: score another split than the run's (``held-out``, ``video``, ``unlabelled``).

Example::

    semflow-eval --load-config RUN/config.yml --output-path eval.json
"""

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Optional

import numpy as np
import tyro
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.scripts.eval import ComputePSNR
from nerfstudio.utils.eval_utils import eval_setup
from rich.console import Console

from semflow_ns.data.scene_format import FrameRecord, SceneFormatError
from semflow_ns.data.splits import EvalSource
from semflow_ns.scripts.runs import RunError, edited_config_file, load_run_config, load_run_scene


def _set_eval_source(config: TrainerConfig, source: Optional[EvalSource]) -> None:
    if source is not None:
        config.pipeline.datamanager.dataparser.eval_source = source  # type: ignore[attr-defined]


def _eval_frames(config: TrainerConfig, source: Optional[EvalSource]) -> list[FrameRecord]:
    """The evaluation images of ``config`` with ``source`` (None: the run's own setting)."""
    parser = config.pipeline.datamanager.dataparser
    if source is not None:
        parser.eval_source = source  # type: ignore[attr-defined]
    return parser.setup().get_dataparser_outputs(split="test").metadata["semflow_frames"]


def frame_ids(frames: Sequence[FrameRecord], video_times: np.ndarray) -> list[int]:
    """0-based index of the video frame nearest in time to each image."""
    return [int(np.abs(video_times - f.time).argmin()) for f in frames]


@dataclass
class SemanticEval(ComputePSNR):
    """Load a Semantic Flow checkpoint, score colour and semantics on its evaluation images (and, after
    training on a label subset, on the frames whose labels were withheld), and save the scores as JSON."""

    eval_source: Optional[EvalSource] = None
    """Images to score instead of the run's evaluation split: held-out | video | unlabelled."""
    unlabelled: bool = True
    """After training on a label subset, also score the frames whose labels were withheld."""

    def _score(self, source: Optional[EvalSource], key: str) -> tuple[dict, str]:
        """(metrics, checkpoint) over the images of ``source``; images go to render_output_path/key."""
        output = None if self.render_output_path is None else self.render_output_path / key
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
        with edited_config_file(self.load_config, partial(_set_eval_source, source=source)) as copy:
            _, pipeline, checkpoint, _ = eval_setup(copy)
            metrics = pipeline.get_average_eval_image_metrics(output_path=output, get_std=True)
        return metrics, str(checkpoint)

    def report(self) -> dict:
        """The JSON content: ns-eval's keys, the evaluated frames, and the unlabelled-frame scores."""
        config = load_run_config(self.load_config)
        times = load_run_scene(config).video.times.numpy()
        report: dict = {"experiment_name": config.experiment_name, "method_name": config.method_name}
        try:
            frames = _eval_frames(config, self.eval_source)
        except (SceneFormatError, ValueError) as err:
            raise RunError(f"--eval-source {self.eval_source}: {err}") from err
        report["results"], report["checkpoint"] = self._score(self.eval_source, "eval")
        report["frames"] = frame_ids(frames, times)
        parser = config.pipeline.datamanager.dataparser
        report["label_frames"] = getattr(parser, "label_frames", "all")
        report["eval_source"] = self.eval_source or getattr(parser, "eval_source", "auto")
        if self.unlabelled and report["eval_source"] != "unlabelled" and report["label_frames"] != "all":
            try:
                unlabelled = _eval_frames(load_run_config(self.load_config), "unlabelled")
            except (SceneFormatError, ValueError) as err:
                report["results_unlabelled"], report["note_unlabelled"] = None, str(err)
            else:
                report["results_unlabelled"], _ = self._score("unlabelled", "unlabelled")
                report["frames_unlabelled"] = frame_ids(unlabelled, times)
        return report

    def main(self) -> None:
        if self.output_path.suffix != ".json":
            raise RunError(f"--output-path must end in .json, got {self.output_path}")
        report = self.report()
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.output_path.write_text(json.dumps(report, indent=2), "utf8")
        Console().print(f"Saved results to: {self.output_path}")


def run(command: SemanticEval, console: Optional[Console] = None) -> int:
    """Runs ``command``; returns the exit code (0 ok, 1 bad input, reported without a traceback)."""
    console = console if console is not None else Console()
    try:
        command.main()
    except RunError as err:
        console.print(f"[red]semflow-eval: {err}[/red]")
        return 1
    return 0


def entrypoint(args: Sequence[str] | None = None) -> None:
    """Console-script entry point; ``args`` defaults to the command line."""
    tyro.extras.set_accent_color("bright_yellow")
    sys.exit(run(tyro.cli(SemanticEval, prog="semflow-eval", args=args)))


if __name__ == "__main__":
    entrypoint()
