"""Driving a backend: every request of the plan tried up to max_attempts times, `backend.slots` in flight,
each record scored by `smoke.score` (the one validity function), then checked for internal consistency as it will
be released (`ReleaseCheck`), and its outcome journaled."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Callable

from medgen.core.config import GenerateConfig, PipelineConfig
from medgen.data.prompts import request_messages
from medgen.generate.journal import Journal
from medgen.generate.plan import Request
from medgen.serve import smoke
from medgen.serve.backends import Backend, attempt_seed

OnProgress = Callable[[int, int], None]  # (done, total), for a caller's own display (a Prefect progress artifact)
# The consistency checks a record fails as it will be released, from the model's text and the request's id.
ReleaseCheck = Callable[[str, str], list[str]]
INCONSISTENT = "inconsistent: "  # the prefix of a rejection reason that names a failed consistency check


def generate_one(backend: Backend, req: Request, gen: GenerateConfig, *, temperature: float, top_p: float,
                  stops: tuple[str, ...], min_section_fraction: float, inline: bool,
                  release_check: ReleaseCheck | None = None) -> dict:
    """Try a request up to max_attempts times; the journal entry of its outcome (valid or rejected). An attempt that
    passes the validity checks is checked for consistency (`release_check`): counted either way, retried when it
    fails and generate.reject_inconsistent holds."""
    messages = request_messages(req.sex, req.service, inline)
    tokens_total, checked, inconsistent, by_check = 0, 0, 0, Counter()
    reasons: list[str] = []
    for attempt in range(gen.max_attempts):
        seed = attempt_seed(req.seed, attempt)
        out = backend.chat(messages, max_tokens=gen.max_tokens, temperature=temperature, top_p=top_p, seed=seed,
                           stop=stops)
        tokens_total += out.tokens
        scored = smoke.score(out.text, req.sex, req.service, out.stopped, min_section_fraction, inline)
        failed = release_check(out.text, req.id) if scored["passed"] and release_check else []
        checked += bool(scored["passed"] and release_check)
        inconsistent += bool(failed)
        by_check.update(failed)
        entry = {"id": req.id, "index": req.index, "sex": req.sex, "service": req.service, "attempts": attempt + 1,
                 "tokens_total": tokens_total, "failed_attempts": attempt, "checked_attempts": checked,
                 "inconsistent_attempts": inconsistent, "inconsistent_checks": dict(by_check)}
        if scored["passed"] and not (failed and gen.reject_inconsistent):
            return {**entry, "valid": True, "seed": seed, "tokens": out.tokens, "seconds": round(out.seconds, 3),
                    "text": out.text}
        reasons = sorted(scored["reasons"]) if not scored["passed"] else sorted(INCONSISTENT + c for c in failed)
    return {**entry, "valid": False, "failed_attempts": gen.max_attempts, "reasons": reasons}


def drive(backend: Backend, todo: list[Request], gen: GenerateConfig, config: PipelineConfig, inline: bool,
           stops: tuple[str, ...], journal: Journal, by_id: dict[str, dict], report: Callable[[dict], None],
           release_check: ReleaseCheck | None = None) -> int:
    """Run the requests, `backend.slots` at a time; journal each outcome from this thread only, so lines never
    interleave, and `report` it. Returns the tokens generated.

    A failed request (the server died, say) cancels the queued ones, but those in flight are still awaited and
    journaled if they finish, so a restart or a rerun asks for as little as possible again; then it is raised."""
    tokens = 0
    error: Exception | None = None
    pool = ThreadPoolExecutor(max_workers=backend.slots, thread_name_prefix="generate")
    try:
        futures: list[Future] = [
            pool.submit(generate_one, backend, r, gen, temperature=config.serve.temperature,
                        top_p=config.serve.top_p, stops=stops,
                        min_section_fraction=config.smoke.min_section_fraction, inline=inline,
                        release_check=release_check) for r in todo]
        for fut in as_completed(futures):
            if fut.cancelled():
                continue
            try:
                entry = fut.result()
            except Exception as e:
                if error is None:
                    error = e
                    for queued in futures:
                        queued.cancel()
                continue
            journal.append(entry)
            by_id[entry["id"]] = entry
            tokens += entry["tokens_total"]
            report(entry)
    except BaseException:
        # Queued requests are dropped at once; those in flight end with the server, and their outcome is
        # not journaled, so a rerun asks for them again.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if error is not None:
        raise error
    return tokens


