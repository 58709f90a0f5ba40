"""Turn any error of a dlbasics run into one line that says what is wrong and what to do.

    dlbasics fit --config configs/rule_classifier.yaml --model.init_args.lr -1
    # dlbasics: error: model.lr: lr must be > 0, got -1.0

jsonargparse reports a bad value inside a nested, multi-line "Does not validate against any of the
Union subtypes" message; :func:`one_line` digs out the parameter path and the innermost reason.
"""

from __future__ import annotations

import re

_NOISE = (
    "Parser key",
    "Does not validate",
    "Subtypes:",
    "Errors:",
    "Given value",
    "Expected a <class 'NoneType'>",
    "Problem with given class_path",
    "Expected a path but",
)


def _choices(group: str) -> str:
    import dlbasics.data
    import dlbasics.models

    module = dlbasics.models if group == "model" else dlbasics.data
    names = [n for n in module.__all__ if not n.startswith("InMemory")]
    return ", ".join(names)


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    chain = [err]
    while (cause := chain[-1].__cause__) is not None and cause not in chain:
        chain.append(cause)
    return chain


def one_line(err: BaseException) -> str:
    """One line describing ``err``: for argument errors the parameter path and the innermost reason.

    jsonargparse wraps a bad nested value (``--model.init_args.optimizer.init_args.lr abc``) in several
    exceptions, each naming one level of the path; the keys are collected from the whole chain.
    """
    chain = _chain(err)
    text = "\n".join(str(e) for e in chain) if len(chain) > 1 else str(err)
    lines = [re.sub(r'^(- )?(Parser key "[^"]+":\s*)?', "", ln.strip()) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return type(err).__name__
    keys = list(dict.fromkeys(k for k in re.findall(r'Parser key "([^"]+)"', text) if k != "init_args"))
    if not keys and "Does not validate" not in text:
        return lines[0] if type(err).__name__ == "ArgumentError" else f"{type(err).__name__}: {lines[0]}"
    innermost = [ln.strip(" -") for ln in str(chain[-1]).splitlines() if ln.strip(" -")]
    reasons = [ln for ln in lines if not ln.startswith(_NOISE)]
    inner = [ln for ln in innermost if not ln.startswith(_NOISE) and not ln.startswith("Expected a path but")]
    reason = inner[-1] if len(chain) > 1 and inner else reasons[-1] if reasons else lines[0]
    given = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Given value:")), None)
    if "dot import path" in reason and len(keys) > 1:
        given = reason.rsplit(":", 1)[-1].strip()
        return f"{'.'.join(keys)}: {given!r} is not a class: give a class_path such as torch.optim.SGD"
    if (
        keys[:1] in (["model"], ["data"])
        and len(keys) == 1
        and ("import path" in reason or "has no attribute" in reason)
    ):
        name = given or reason.rsplit(" ", 1)[-1].strip("'")
        return f"unknown {keys[0]} {name!r}: use one of {_choices(keys[0])} (or a full class_path)"
    if given is not None and reason.startswith("Expected a") and "Got value" not in reason:
        reason = f"{reason}, got {given!r}"
    if not keys:
        return reason if reasons else f"{type(err).__name__}: {reason}"
    return f"{'.'.join(keys)}: {reason}"
