"""Which Firestore queries the deployed indexes can serve, judged against deploy.sh (issue 11.2).

``deploy.sh`` exempts fields from Firestore's automatic single-field indexes and creates no
composite index. With only the remaining single-field indexes Firestore serves a query that
(a) filters by equality on indexed fields only (merged by document key), in key order, or
(b) has no filter and orders by one indexed field. Anything else (a range, an order after a
filter, any use of an exempt field) fails in production with FAILED_PRECONDITION, while the
emulator, which needs no index, answers it: hence this check, on every query the tests make.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from google.cloud.firestore_v1.types import StructuredQuery

ROOT = Path(__file__).resolve().parents[1]
KEY = "__name__"  # the document key: always indexed


@functools.cache
def deployed_exemptions() -> dict[str, frozenset[str]]:
    """Fields per collection that ``./deploy.sh --dry-run`` exempts from indexing."""
    from tests.unit.deploy.plan import PROJECT, dry_run, exemptions

    with tempfile.TemporaryDirectory() as tmp:
        plan = dry_run(Path(tmp), "--project", PROJECT)
    found = {c: frozenset(f) for c, f in exemptions(plan).items()}
    composite = plan.find("gcloud", "firestore", "indexes", "composite", "create")
    assert not composite, "a composite index: teach tests/indexes.py about it"
    return found


def structured_query(request: Any) -> StructuredQuery:
    """The StructuredQuery of a RunQuery or RunAggregationQuery request (dict or message)."""
    get = request.get if isinstance(request, dict) else lambda name: getattr(request, name, None)
    aggregation = get("structured_aggregation_query")
    query = aggregation.structured_query if aggregation else get("structured_query")
    return StructuredQuery.wrap(query._pb) if hasattr(query, "_pb") else query


def equalities(where: StructuredQuery.Filter) -> list[tuple[str, str]] | None:
    """(field, operator) of each field filter, if ``where`` is an AND of them; else None."""
    kind = StructuredQuery.Filter.pb(where).WhichOneof("filter_type")
    if kind == "field_filter":
        return [(where.field_filter.field.field_path, where.field_filter.op.name)]
    if kind == "composite_filter" and where.composite_filter.op.name == "AND":
        found: list[tuple[str, str]] = []
        for part in where.composite_filter.filters:
            inner = equalities(part)
            if inner is None:
                return None
            found += inner
        return found
    return None if kind else []


def unserved(query: StructuredQuery, exempt: dict[str, frozenset[str]]) -> str | None:
    """Why the deployed indexes cannot serve ``query``; None if they can."""
    [source] = query.from_
    collection, unindexed = source.collection_id, exempt.get(source.collection_id, frozenset())
    filters = equalities(query.where) if "where" in query else []
    if filters is None:
        return f"{collection}: a filter other than an AND of field filters"
    orders = [o.field.field_path for o in query.order_by if o.field.field_path != KEY]
    for field, op in filters:
        if op != "EQUAL":
            return f"{collection}: {field} {op}: only equality is served by single-field indexes"
        if field in unindexed:
            return f"{collection}: filters by {field}, which deploy.sh exempts from indexing"
    if orders and filters:
        return f"{collection}: orders by {orders} after a filter: needs a composite index"
    if len(orders) > 1:
        return f"{collection}: orders by {orders}: needs a composite index"
    if orders and orders[0] in unindexed:
        return f"{collection}: orders by {orders[0]}, which deploy.sh exempts from indexing"
    return None
