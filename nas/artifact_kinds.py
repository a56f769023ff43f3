"""Every kind of artifact a command reads back: its shape and what to do when it is damaged.

One table, so a reader names its file kind (`load_json(path, PARETO)`) and the fault suite
(`tests/faults/`) can walk the kinds. Shapes list only what readers rely on (see
`nas.schema`); remedies are the command that writes the file again.
"""

from __future__ import annotations

from nas.readers import Kind
from nas.schema import (
    ANY,
    ANY_NUMBER,
    BOOLEAN,
    INTEGER,
    LIST,
    NUMBER,
    OBJECT,
    STRING,
    STRINGS,
    ListOf,
    MapOf,
    Maybe,
    Number,
    Obj,
    OneOf,
)

# an arch as users and files spell it: canonical object, OFA/DARTS text, or a list
ARCH = OneOf(OBJECT, STRING, LIST)
LATENCY_MS = Number(low=0.0)

MANIFEST = Kind(
    "run manifest",
    Obj(optional={
        "name": STRING,
        "space": Maybe(OBJECT),
        "stages": MapOf(Obj(optional={
            "status": STRING, "config": Maybe(OBJECT), "summary": Maybe(OBJECT),
            "command": Maybe(LIST), "writer": Maybe(OBJECT), "environment": Maybe(OBJECT),
        })),
    }),
    "restore it from a copy, or move the run folder away and run its stages again",
)
STAGE_CONFIG = Kind(
    "resolved stage options", OBJECT,
    "delete it and pass the options again (it is rewritten when the stage starts)",
)
TRAIN_METRICS = Kind(
    "training log", Obj(optional={"step": INTEGER}),
    "delete the damaged lines (or the file); training rewrites it from its checkpoint",
)

_PROFILE_REMEDY = ("delete the damaged line (or run `nas profile --fresh` for this device to "
                   "measure again)")
LATENCY_RECORD = Kind(
    "subnet latency record",
    Obj({"arch": ARCH, "latency_ms": LATENCY_MS},
        optional={"q1_ms": NUMBER, "q3_ms": NUMBER, "setup": Maybe(OBJECT), "arch_id": STRING}),
    _PROFILE_REMEDY,
)
BLOCK_RECORD = Kind(
    "block latency record",
    Obj({"block": STRING, "latency_ms": LATENCY_MS}, optional={"setup": Maybe(OBJECT)}),
    _PROFILE_REMEDY,
)
REFERENCE = Kind(
    "reference subnet latency", Obj({"setup": ANY, "latency_ms": LATENCY_MS}),
    "delete it; `nas profile` measures the reference again",
)

_FIT_REMEDY = "rebuild the predictors with `nas profile fit --device DEVICE` (no measuring)"
PREDICTOR_PARAMS = Kind(
    "predictor model.json", Obj({"kind": STRING, "params": OBJECT}), _FIT_REMEDY,
)
PREDICTOR_ARRAYS = Kind("predictor model.safetensors", remedy=_FIT_REMEDY)
PREDICTOR_META = Kind(
    "predictor meta.json",
    Obj({"space": OBJECT, "format_version": ANY},
        optional={"kind": STRING, "block_keys": STRINGS, "holdout": Maybe(OBJECT),
                  "setup": Maybe(OBJECT), "fingerprint": Maybe(OBJECT), "poor": BOOLEAN,
                  "dim": INTEGER, "space_name": STRING}),
    _FIT_REMEDY,
)
PREDICTOR_SELECTED = Kind("predictor selected.json", Obj({"kind": STRING}), _FIT_REMEDY)
PREDICTOR_REPORT = Kind(
    "predictor report.json",
    Obj(optional={"fingerprint": Maybe(OBJECT), "setup": Maybe(OBJECT),
                  "session": Maybe(OBJECT)}),
    "delete it and run `nas profile fit --device DEVICE`",
)

FRONT_MEMBER = Obj(
    {"arch": OBJECT},
    optional={"arch_id": STRING, "values": MapOf(Maybe(ANY_NUMBER)),
              "metrics": MapOf(Maybe(ANY_NUMBER)), "violation": Maybe(ANY_NUMBER),
              "feasible": BOOLEAN},
)
PARETO = Kind(
    "search front pareto.json",
    OneOf(
        Obj({"front": ListOf(FRONT_MEMBER)}, optional={
            "objectives": ListOf(Obj({"name": STRING}, optional={"direction": STRING})),
            "constraints": ListOf(Obj({"metric": STRING},
                                      optional={"max": Maybe(NUMBER), "min": Maybe(NUMBER)})),
            "device": Maybe(STRING), "config": Maybe(OBJECT),
        }),
        ListOf(FRONT_MEMBER),
    ),
    "run the same `nas search` again: it rewrites the front from its study without "
    "scoring anything twice",
)
STUDY = Kind(
    "search study.db",
    remedy="move it away and run the search again (it starts a new study), or use another "
           "--tag",
)

_TRAIN_REMEDY = ("train the supernet again (`nas train-supernet --run NAME`, or "
                 "`nas import-supernet`)")
SUPERNET_WEIGHTS = Kind("supernet weights", remedy=_TRAIN_REMEDY)
SUPERNET_METADATA = Kind(
    "supernet weights metadata",
    Obj({"space": OBJECT}, optional={"train_config": OBJECT, "few_shot": OBJECT}),
    _TRAIN_REMEDY,
)
CHECKPOINT = Kind(
    "training checkpoint",
    remedy="delete it and start the run again without --resume (its weights, if any, stay)",
)
GENOTYPE = Kind(
    "DARTS genotype.json", OneOf(OBJECT, STRING, LIST),
    "run the DARTS search again (`nas train-supernet --space darts`)",
)
NETWORK_WEIGHTS = Kind(
    "trained network weights", remedy="train the network again (`nas train --run NAME`)",
)
TRAINED_ARCH = Kind(
    "trained subnet arch.json", ARCH,
    "train the network again (`nas train --arch ... --run NAME`)",
)

_RANK_REMEDY = "delete the ranking folder (or pick another --tag) and rank again"
# a score as written: a number, or (JSON has none) "Infinity", "-Infinity", "NaN"
_SCORES = MapOf(Maybe(OneOf(ANY_NUMBER, STRING)))
RANK_SETTINGS = Kind("ranking settings.json", OBJECT, _RANK_REMEDY)
RANK_SCORES = Kind(
    "ranking scores.jsonl", Obj({"arch_id": STRING, "scores": _SCORES},
                                optional={"seconds": Maybe(_SCORES)}), _RANK_REMEDY,
)

_EXPORT_REMEDY = "export it again (`nas export --run NAME`)"
ARCH_JSON = Kind(
    "export arch.json",
    Obj({"arch": ARCH, "space": OBJECT,
         "input": Obj({"shape": ListOf(Number(integer=True, low=1), min_len=3)})},
        optional={"builder": STRING, "builder_kwargs": OBJECT, "files": Maybe(OBJECT),
                  "deploy": Maybe(OBJECT)}),
    _EXPORT_REMEDY,
)
EXPORT_METRICS = Kind(
    "export metrics.json",
    Obj(optional={
        "status": STRING, "accuracy": Maybe(OBJECT),
        "provenance": Maybe(Obj(optional={"run": Maybe(STRING), "runs_dir": Maybe(STRING),
                                          "commands": Maybe(STRINGS)})),
        "latency": Maybe(Obj(optional={"predicted": Maybe(MapOf(ANY_NUMBER))})),
    }),
    _EXPORT_REMEDY,
)
EXPORT_WEIGHTS = Kind("export weights.safetensors", remedy=_EXPORT_REMEDY)

__all__ = [
    "ARCH_JSON", "BLOCK_RECORD", "CHECKPOINT", "EXPORT_METRICS", "EXPORT_WEIGHTS", "GENOTYPE",
    "LATENCY_RECORD", "MANIFEST", "NETWORK_WEIGHTS", "PARETO", "PREDICTOR_ARRAYS",
    "PREDICTOR_META", "PREDICTOR_PARAMS", "PREDICTOR_REPORT", "PREDICTOR_SELECTED", "RANK_SCORES",
    "RANK_SETTINGS", "REFERENCE",
    "STAGE_CONFIG", "STUDY", "SUPERNET_METADATA", "SUPERNET_WEIGHTS", "TRAIN_METRICS",
    "TRAINED_ARCH",
]
