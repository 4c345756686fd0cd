"""Walking ASL definitions, shared by the static checks."""

from collections.abc import Iterator
from typing import Any


def iter_states(states: dict[str, Any], path: str = "States") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state with its path, including Map ItemProcessor/Iterator and Parallel Branches."""
    for name, state in states.items():
        where = f"{path}.{name}"
        yield where, state
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from iter_states(state[key].get("States", {}), f"{where}.{key}.States")
        for i, branch in enumerate(state.get("Branches", [])):
            yield from iter_states(branch.get("States", {}), f"{where}.Branches[{i}].States")
