"""The benchmark's results as Markdown: docs/performance.md's table and notes."""

from __future__ import annotations

from typing import Any

from mnist_tf.benchmark.race import BASELINE
from mnist_tf.benchmark.roofline import PEAK_DTYPES


def table(results: dict[str, Any]) -> str:
    """The results as Markdown: the machine's peak, a table of every contender, then the pipeline, each model's
    work per image and each model's curve."""
    lines = [*_peak(results), ""] if "peak" in results else []
    lines += [
        f"| model | contender | train images/s | vs {BASELINE} | GFLOP/s | of matmul peak | eval images/s "
        f"| vs {BASELINE} | time to target | vs {BASELINE} | first step after | start to target | test accuracy "
        "| peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for model, race in results["models"].items():
        for name, c in race["contenders"].items():
            ratios = c[f"vs_{BASELINE}"]
            to_target = f"{c['seconds_to_target']:.1f} s" if c["seconds_to_target"] else "not reached"
            time_ratio = f"{ratios['time_to_target']:.2f}x" if ratios["time_to_target"] else "-"
            roof = c.get("roofline")
            gflops = f"{roof['gflops']:,.0f} | {roof['of_matmul_peak']:.0%}" if roof else "- | -"
            from_start = c["seconds_from_start_to_target"]
            lines.append(
                f"| {model} | {name} | {c['train_images_per_second']:,.0f} | {ratios['train_speed']:.2f}x "
                f"| {gflops} | {c['eval_images_per_second']:,.0f} | {ratios['eval_speed']:.2f}x "
                f"| {to_target} to {race['target_accuracy']:.1%} | {time_ratio} "
                f"| {c['seconds_to_first_step']:.1f} s | {f'{from_start:.1f} s' if from_start else '-'} "
                f"| {c['final_test_accuracy']:.2%} | {c['peak_rss_mb']:,.0f} MB |"
            )
        ours = race["contenders"]["ours"]
        notes.append(
            f"- {model} (batch {race['batch_size']}, {race['steps_trained']} steps): the input pipeline alone gives "
            f"{race['pipeline_images_per_second']:,.0f} images/s, {race['pipeline_to_train']:.0f}x ours' training; "
            f"evaluation runs {race['eval_to_train']:.1f}x faster than training. One image costs "
            f"{race['flops_per_image']['train'] / 1e6:.1f} MFLOP to train "
            f"({race['flops_per_image']['forward'] / 1e6:.2f} forward). Start-up of ours: "
            + ", ".join(f"{phase} {t:.1f} s" for phase, t in ours["startup_seconds"].items())
            + f", first step {ours['first_step_seconds']:.1f} s. Test accuracy of ours over "
            "training time: " + ", ".join(f"{p['seconds']:.1f} s {p['accuracy']:.2%}" for p in ours["curve"])
        )
    return "\n".join([*lines, "", *notes])


def _peak(results: dict[str, Any]) -> list[str]:
    peak = results["peak"]
    return [
        f"Peak of this machine ({peak['cores']} cores, TensorFlow's kernels), GFLOP/s: "
        + "; ".join(
            f"{dtype}: {peak['matmul_size']}x{peak['matmul_size']} matrix product {peak[dtype]['matmul_gflops']:,.0f}, "
            f"LeNet's second convolution {peak[dtype]['conv_gflops']:,.0f}"
            for dtype in PEAK_DTYPES
        )
        + f". The race computes in {results['precision']['dtype']}; its columns are against that precision's peak."
    ]
