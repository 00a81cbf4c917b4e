"""Every benchmark workload completes without an error against the real app.

A correctness check of the workloads `make bench` drives (a scenario that started failing
would measure error pages), never a timing assertion: a few visits each, on a small workspace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from bench.scenarios import SCENARIOS, Dataset, drive, load_dataset
from tests.conftest import WorkspaceHandle

NAMES = (
    ("Somchai", "Jaidee", "+66812345670"),
    ("Nguyễn", "Văn An", "+84912345670"),
    ("Siriporn", "Wongsawat", "+66891234560"),
    ("Trần", "Thị Mai", "+84387654320"),
)


@pytest.fixture
async def as_workspace(
    app: FastAPI, workspace: WorkspaceHandle
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=workspace.headers
    ) as client:
        yield client


@pytest.fixture
async def dataset(as_workspace: httpx.AsyncClient) -> Dataset:
    items = [
        {
            "given_name": given,
            "family_name": family,
            "phones": [{"number": phone[:-1] + str(n)}],
            "external_ids": {"pos": f"C-{index}-{n}"},
        }
        for n in range(5)
        for index, (given, family, phone) in enumerate(NAMES)
    ]
    seeded = await as_workspace.post("/v1/contacts/batch", json={"items": items})
    assert seeded.status_code == 200, seeded.text
    return await load_dataset(as_workspace)


async def test_the_dataset_is_read_from_the_workspace(dataset: Dataset) -> None:
    assert len(dataset.contact_ids) == 20
    assert {"somchai", "nguyễn", "wongsawat"} <= set(dataset.names)
    assert "+66812345670" in dataset.phones


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_every_workload_completes_without_errors(
    name: str, as_workspace: httpx.AsyncClient, dataset: Dataset
) -> None:
    outcome = await drive(as_workspace, SCENARIOS[name], dataset, concurrency=2, visits=8)

    samples = {step: stats.error_samples for step, stats in outcome.record.steps.items()}
    assert outcome.record.errors == 0, samples
    assert outcome.record.visits == 8
    assert outcome.record.requests >= 8


async def test_an_unexpected_status_counts_as_an_error_with_a_sample(
    as_workspace: httpx.AsyncClient, dataset: Dataset
) -> None:
    broken = Dataset(
        contact_ids=["01a203ac-1022-7102-9d8c-88190aa27e2e"],  # no such contact
        names=dataset.names,
        phones=[],
        purchases=[],
    )

    outcome = await drive(as_workspace, SCENARIOS["get_contact"], broken, concurrency=1, visits=3)

    stats = outcome.record.steps["get contact"]
    assert stats.errors == 3
    assert outcome.record.failed_visits == 3
    assert stats.statuses == {404: 3}
    assert stats.error_samples[0]["status"] == 404
