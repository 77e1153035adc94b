"""The generation plan: N requests over (sex, service) from a mix (the training distribution, uniform over
the trained pairs, or counts from a CSV), each with its own id and sampling seed, the same for every shard."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from medgen.core.config import GenerateConfig, PipelineConfig
from medgen.core.constants import MANIFEST_FILE, SEXES
from medgen.core.errors import DataError
from medgen.core.results import PrepareResult
from medgen.serve.backends import request_seed

CSV_COLUMNS = ("sex", "service", "count")


@dataclass(frozen=True)
class Request:
    index: int  # position in the unsharded plan
    id: str
    sex: str
    service: str
    seed: int  # sampling seed of the first attempt


def allocate(weights: dict[tuple[str, str], int], n: int) -> dict[tuple[str, str], int]:
    """Split n over the pairs in proportion to their weights, by largest remainder: each pair gets
    floor(n * p) or one more, and the counts sum to n (i.i.d. draws would leave rare pairs out by chance)."""
    total = sum(weights.values())
    if total <= 0:
        raise DataError([f"mix: expected at least one (sex, service) pair with a positive count, got {weights}"])
    quotas = {k: Fraction(n * w, total) for k, w in weights.items()}
    alloc = {k: int(q) for k, q in quotas.items()}
    left = n - sum(alloc.values())
    # Ties go to the pair that sorts first, so the plan depends on nothing but its inputs.
    for k in sorted(quotas, key=lambda k: (alloc[k] - quotas[k], k))[:left]:
        alloc[k] += 1
    return alloc


def training_pairs(config: PipelineConfig) -> dict[tuple[str, str], int]:
    """(sex, service) counts of the prepared data; services may hold '/', so the key splits on the first."""
    prepared = PrepareResult.from_manifest(config.stage_dir("prepare"))
    pairs: dict[tuple[str, str], int] = {}
    for key, count in prepared.sex_service_counts.items():
        sex, sep, service = key.partition("/")
        if sep and sex in SEXES and service and count > 0:
            pairs[(sex, service)] = pairs.get((sex, service), 0) + count
    if not pairs:
        raise DataError([f"{prepared.out_dir / MANIFEST_FILE}: sex_service_counts: expected 'Sex/SERVICE' keys "
                         f"with Sex in {', '.join(SEXES)}, got {sorted(prepared.sex_service_counts)}"])
    return pairs


def read_mix_csv(path: Path) -> dict[tuple[str, str], int]:
    """Counts per (sex, service) from a CSV with columns sex,service,count; every bad row is reported with
    its file:line, and a pair listed twice has its counts summed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError([f"{path}: no such file; expected 'train', 'uniform' or a CSV with columns "
                         f"{','.join(CSV_COLUMNS)}"]) from None
    except UnicodeDecodeError as e:
        raise DataError([f"{path}: expected UTF-8 text, got a byte {e.object[e.start]:#04x} at offset {e.start}"]) from None
    reader = csv.DictReader(text.splitlines())
    header = [c.strip() for c in reader.fieldnames or []]
    if any(c not in header for c in CSV_COLUMNS):
        raise DataError([f"{path}:1: expected columns {','.join(CSV_COLUMNS)}, got {','.join(header) or 'nothing'}"])
    reader.fieldnames = header
    problems: list[str] = []
    pairs: dict[tuple[str, str], int] = {}
    for row in reader:
        where = f"{path}:{reader.line_num}"
        sex, service, count = ((row.get(c) or "").strip() for c in CSV_COLUMNS)
        if sex not in SEXES:
            problems.append(f"{where}: sex: expected one of {', '.join(SEXES)}, got {sex!r}")
        if not service:
            problems.append(f"{where}: service: expected a medical service such as CARDIOLOGY, got an empty value")
        if not count.isdigit():
            problems.append(f"{where}: count: expected a whole number >= 0, got {count!r}")
        elif sex in SEXES and service and int(count) > 0:
            pairs[(sex, service)] = pairs.get((sex, service), 0) + int(count)
    if problems:
        raise DataError(problems)
    if not pairs:
        raise DataError([f"{path}: expected at least one row with a count > 0, got none"])
    return pairs


def mix_counts(config: PipelineConfig, gen: GenerateConfig) -> dict[tuple[str, str], int]:
    """How many requests each (sex, service) pair gets in the whole (unsharded) plan."""
    if gen.mix == "train":
        return allocate(training_pairs(config), gen.n)
    if gen.mix == "uniform":
        return allocate({k: 1 for k in training_pairs(config)}, gen.n)
    return read_mix_csv(Path(gen.mix).expanduser())


def plan(config: PipelineConfig, gen: GenerateConfig) -> list[Request]:
    """The whole plan, the same for every shard: pairs by count, shuffled with the seed, ids by position."""
    counts = mix_counts(config, gen)
    pairs = [k for k in sorted(counts) for _ in range(counts[k])]
    random.Random(gen.seed).shuffle(pairs)
    return [Request(i, f"r{i:06d}", sex, service, request_seed(gen.seed, i)) for i, (sex, service) in enumerate(pairs)]


def shard_of(requests: list[Request], shard: int, shards: int) -> list[Request]:
    return [r for r in requests if r.index % shards == shard]


def out_dir(config: PipelineConfig) -> Path:
    """Where this config's corpus (or shard of it) is written (the stage registry asks)."""
    return out_dir_for(config, config.generate)


def out_dir_for(config: PipelineConfig, gen: GenerateConfig) -> Path:
    base = config.stage_dir("generate")
    return base if gen.shards == 1 else base / f"shard-{gen.shard}-of-{gen.shards}"


