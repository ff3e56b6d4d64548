"""Issue 3, Done-when 2: day-trained detector fine-tuned on 100 night images vs the same 100 from scratch.

Target: fine-tuned beats scratch by >= 15 mAP@.5 points on a night validation set (same epochs).

    python experiments/scene_adaptation.py --out runs/scene_adaptation [--smoke]

Writes ``<out>/result.json`` with the day model's night mAP (before adaptation), both runs and the gap.
"""

from __future__ import annotations

from common import base_spec, evaluate, parser, render, run, save

NIGHT = {"time_of_day": {"night": 1.0}}
DAY = {"time_of_day": {"day": 1.0}}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--adapt-epochs", type=int, default=30)
    args = p.parse_args()
    n_day, n_night, n_val = (16, 8, 8) if args.smoke else (2000, 100, 300)
    data = args.out / "data"
    day = render(data / "day_train", n_day, seed=21, smoke=args.smoke, **DAY)
    day_val = render(data / "day_val", n_val, seed=22, smoke=args.smoke, **DAY)
    night = render(data / "night_train", n_night, seed=23, smoke=args.smoke, **NIGHT)
    night_val = render(data / "night_val", n_val, seed=24, smoke=args.smoke, **NIGHT)

    day_run = run(base_spec(args, day, day_val, epochs=60), args.out / "day")
    before = evaluate(day_run["best"], night_val)

    adapt_epochs = 1 if args.smoke else args.adapt_epochs
    finetune = base_spec(args, night, night_val, epochs=adapt_epochs)
    finetune["model"]["pretrained"] = day_run["best"]
    finetune["training"].update(lr=finetune["training"]["lr"] / 4, warmup_epochs=0 if args.smoke else 1)
    finetune["evaluation"]["interval"] = 5
    scratch = base_spec(args, night, night_val, epochs=adapt_epochs)
    scratch["evaluation"]["interval"] = 5
    for spec in (finetune, scratch):
        spec["training"]["batch_size"] = min(spec["training"]["batch_size"], 16)
        spec["training"]["epochs"] = adapt_epochs
    tuned = run(finetune, args.out / "night_finetuned")
    fresh = run(scratch, args.out / "night_scratch")
    tuned_val, fresh_val = evaluate(tuned["best"], night_val), evaluate(fresh["best"], night_val)
    gap = 100 * (tuned_val["mAP50"] - fresh_val["mAP50"])
    save(
        args.out,
        {
            "experiment": "scene_adaptation",
            "day_model": day_run,
            "day_model_on_night_val": before,
            "finetuned": {**tuned, "val": tuned_val},
            "scratch": {**fresh, "val": fresh_val},
            "gap_mAP50_points": round(gap, 2),
            "target_points": 15,
            "passed": bool(gap >= 15),
        },
    )


if __name__ == "__main__":
    main()
