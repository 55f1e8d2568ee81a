"""The run's event log: go-lives, gate decisions, rollbacks, drift change points, monitor alarms."""

from __future__ import annotations

import pandas as pd


class EventLog:
    """Append-only list of events; ``time_h`` is simulated hours since the start."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def log(
        self, time_h: float, kind: str, site: str = "", detail: str = "", value: float = float("nan")
    ) -> None:
        self.rows.append(
            {
                "time_h": float(time_h),
                "day": int(time_h // 24),
                "kind": kind,
                "site": site,
                "detail": detail,
                "value": float(value),
            }
        )

    def of_kind(self, kind: str) -> list[dict]:
        return [r for r in self.rows if r["kind"] == kind]

    def to_frame(self, run_id: str, seed: int) -> pd.DataFrame:
        cols = ["time_h", "day", "kind", "site", "detail", "value"]
        df = pd.DataFrame(self.rows, columns=cols)
        df.insert(0, "seed", seed)
        df.insert(0, "run_id", run_id)
        return df.astype({"seed": "int64", "time_h": "float64", "day": "int64", "value": "float64"})
