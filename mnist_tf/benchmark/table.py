"""The benchmark's results as Markdown: docs/performance.md's table and notes."""

from __future__ import annotations

from typing import Any

from mnist_tf.benchmark.race import BASELINE


def table(results: dict[str, Any]) -> str:
    """The results as Markdown: a table of every contender, then the pipeline and each model's curve."""
    lines = [
        f"| model | contender | train images/s | vs {BASELINE} | eval images/s | vs {BASELINE} "
        f"| time to target | vs {BASELINE} | test accuracy | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for model, race in results["models"].items():
        for name, c in race["contenders"].items():
            ratios = c[f"vs_{BASELINE}"]
            to_target = f"{c['seconds_to_target']:.1f} s" if c["seconds_to_target"] else "not reached"
            time_ratio = f"{ratios['time_to_target']:.2f}x" if ratios["time_to_target"] else "-"
            lines.append(
                f"| {model} | {name} | {c['train_images_per_second']:,.0f} | {ratios['train_speed']:.2f}x "
                f"| {c['eval_images_per_second']:,.0f} | {ratios['eval_speed']:.2f}x "
                f"| {to_target} to {race['target_accuracy']:.1%} | {time_ratio} "
                f"| {c['final_test_accuracy']:.2%} | {c['peak_rss_mb']:,.0f} MB |"
            )
        ours = race["contenders"]["ours"]
        notes.append(
            f"- {model} (batch {race['batch_size']}, {race['steps_trained']} steps): the input pipeline alone gives "
            f"{race['pipeline_images_per_second']:,.0f} images/s, {race['pipeline_to_train']:.0f}x ours' training; "
            f"evaluation runs {race['eval_to_train']:.1f}x faster than training. Test accuracy of ours over "
            "training time: " + ", ".join(f"{p['seconds']:.1f} s {p['accuracy']:.2%}" for p in ours["curve"])
        )
    return "\n".join([*lines, "", *notes])
