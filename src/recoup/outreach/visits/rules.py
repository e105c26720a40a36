"""Pure rules of visit routes: distances, the order districts are visited in, visit times.

A day's visits are grouped by city and district; each district is one stop, visited once.
Cities are ordered first (from the start, by their districts' centre), then the districts of
each city from where the previous city ended: nearest neighbour, improved by 2-opt. The route
is never longer than the naive route — cities, then their districts, in the order the list
first names them — which is kept when the heuristic does not beat it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

EARTH_RADIUS_METRES = 6_371_000.0

Point = tuple[float, float]  # (latitude, longitude) in degrees


def distance(a: Point, b: Point) -> float:
    """Return the great-circle distance between two points in metres (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_METRES * math.asin(min(1.0, math.sqrt(h)))


def path_length(points: Sequence[Point], *, start: Point | None = None) -> float:
    """Return the length of a path through ``points`` in order, from ``start`` if given."""
    path = [start, *points] if start is not None else list(points)
    return sum(distance(a, b) for a, b in pairwise(path))


def _nearest_neighbour(points: Sequence[Point], start: Point | None) -> list[int]:
    left = list(range(len(points)))
    order: list[int] = []
    here = start
    while left:
        if here is None:
            chosen = left[0]
        else:
            origin = here
            chosen = min(left, key=lambda index: (distance(origin, points[index]), index))
        order.append(chosen)
        left.remove(chosen)
        here = points[chosen]
    return order


def _two_opt(order: list[int], points: Sequence[Point], start: Point | None) -> list[int]:
    """Reverse segments of an open path while that shortens it (first improvement)."""

    def length(candidate: list[int]) -> float:
        return path_length([points[i] for i in candidate], start=start)

    best = order[:]
    best_length = length(best)
    improved = True
    while improved:
        improved = False
        for i in range(len(best) - 1):
            for j in range(i + 1, len(best)):
                candidate = best[:i] + best[i : j + 1][::-1] + best[j + 1 :]
                candidate_length = length(candidate)
                if candidate_length < best_length - 1e-6:
                    best, best_length, improved = candidate, candidate_length, True
    return best


def order_points(points: Sequence[Point], *, start: Point | None = None) -> list[int]:
    """Return an order to visit ``points`` in: never longer than the order they are given in."""
    if len(points) < 2:
        return list(range(len(points)))
    naive = list(range(len(points)))
    order = _nearest_neighbour(points, start)
    if len(points) <= 60:  # 2-opt is quadratic per pass; a day has far fewer stops
        order = _two_opt(order, points, start)
    naive_length = path_length(points, start=start)
    ordered_length = path_length([points[i] for i in order], start=start)
    return order if ordered_length <= naive_length else naive


@dataclass(frozen=True, slots=True)
class Stop:
    """One visit to plan: its place and where it is (None when the district is not known)."""

    city: str
    district: str
    point: Point | None


@dataclass(frozen=True, slots=True)
class District:
    """A stop of the route: one district of one city and the visits (indexes) made there."""

    city: str
    district: str
    point: Point | None
    visits: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """The districts in visiting order, and the route's length over the known districts."""

    districts: tuple[District, ...]
    metres: int

    @property
    def order(self) -> list[int]:
        """Return the visits' indexes in route order."""
        return [visit for district in self.districts for visit in district.visits]


def _centre(points: Sequence[Point]) -> Point:
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def _group(stops: Sequence[Stop]) -> dict[str, dict[str, list[int]]]:
    """Group visit indexes by city, then district, in the order the list first names them."""
    cities: dict[str, dict[str, list[int]]] = {}
    for index, stop in enumerate(stops):
        cities.setdefault(stop.city, {}).setdefault(stop.district, []).append(index)
    return cities


def _districts_in_order(
    stops: Sequence[Stop],
    cities: dict[str, dict[str, list[int]]],
    city_order: list[str],
    start: Point | None,
    *,
    heuristic: bool,
) -> list[District]:
    route: list[District] = []
    here = start
    for city in city_order:
        districts = cities[city]
        known = [name for name in districts if stops[districts[name][0]].point is not None]
        unknown = sorted(name for name in districts if name not in known)
        points = [stops[districts[name][0]].point for name in known]
        located = [point for point in points if point is not None]
        order = order_points(located, start=here) if heuristic else list(range(len(located)))
        for name in [known[i] for i in order] + unknown:
            first = stops[districts[name][0]]
            route.append(District(city, name, first.point, tuple(districts[name])))
        if order:
            here = located[order[-1]]
    return route


def _length(route: Sequence[District], start: Point | None) -> float:
    return path_length([d.point for d in route if d.point is not None], start=start)


def plan_route(stops: Sequence[Stop], *, start: Point | None = None) -> Route:
    """Return the day's route: by city, then district, each district visited once.

    Visits in one district keep the order they are given in (priority). Districts without a
    known place come last in their city; cities without one come last of all.
    """
    cities = _group(stops)
    centres = {
        city: _centre(located)
        for city, districts in cities.items()
        if (
            located := [
                point
                for name in districts
                if (point := stops[districts[name][0]].point) is not None
            ]
        )
    }
    known_cities = [city for city in cities if city in centres]
    unknown_cities = sorted(city for city in cities if city not in centres)
    city_order = [
        known_cities[i] for i in order_points([centres[c] for c in known_cities], start=start)
    ]
    planned = _districts_in_order(stops, cities, city_order + unknown_cities, start, heuristic=True)
    naive = _districts_in_order(stops, cities, list(cities), start, heuristic=False)
    planned_length, naive_length = _length(planned, start), _length(naive, start)
    chosen, metres = (
        (planned, planned_length) if planned_length <= naive_length else (naive, naive_length)
    )
    return Route(districts=tuple(chosen), metres=round(metres))


def naive_length(stops: Sequence[Stop], *, start: Point | None = None) -> float:
    """Return the length of the naive route: cities, then their districts, each in the order
    the list first names them (what a route is compared with)."""
    cities = _group(stops)
    return _length(_districts_in_order(stops, cities, list(cities), start, heuristic=False), start)


def visit_times(first: datetime, *, count: int, minutes: int) -> list[datetime]:
    """Return when each of ``count`` visits is planned: one every ``minutes`` from ``first``."""
    return [first + timedelta(minutes=minutes * index) for index in range(count)]


def moved_slot(
    refused_at: datetime, next_allowed_at: datetime | None, *, day_end: datetime
) -> datetime | None:
    """Return where a visit the gate refuses at its planned slot goes: the gate's next allowed
    time when that is later the same work day, else None (the visit is dropped from the day)."""
    if next_allowed_at is None or next_allowed_at <= refused_at or next_allowed_at >= day_end:
        return None
    return next_allowed_at


def stops_length(stops: Sequence[Stop], *, start: Point | None = None) -> int:
    """Return the length in metres of a route visiting ``stops`` in the order given (a district
    visited twice in a row counts once; unknown places are skipped)."""
    points = [stop.point for stop in stops if stop.point is not None]
    path = [point for index, point in enumerate(points) if index == 0 or points[index - 1] != point]
    return round(path_length(path, start=start))
