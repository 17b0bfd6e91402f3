"""Vehicle routing with PyVRP: CVRPLIB instances and the twin's collection tours.

PyVRP 0.14 (iterated local search over HGS's neighbourhoods; best open solver on
CVRPLIB, see PITFALLS.md) solves integer distance/duration matrices. Two entry
points: :func:`solve_cvrp` for a CVRPLIB instance, and :func:`plan_tours` for
the waste layer's daily tours, where trucks leave the garage, empty at a
transfer site whenever they are full (PyVRP reload depots) and end their shift
there, with a service time per container and a shift length with paid overtime.
The seed is passed to the solver, so a run is reproducible; with a time limit
the result also depends on machine speed, an iteration limit does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from twin.engines.cvrplib import CvrpInstance


@dataclass
class VrpResult:
    """A CVRP solution: routes as 0-based node positions (depot implied)."""

    cost: int
    routes: list[list[int]]
    feasible: bool
    seconds: float
    iterations: int
    solver: str = "pyvrp"


def _stop(seconds: float | None, iterations: int | None):
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

    criteria = []
    if seconds is not None:
        criteria.append(MaxRuntime(float(seconds)))
    if iterations is not None:
        criteria.append(MaxIterations(int(iterations)))
    if not criteria:
        raise ValueError("give a time limit (seconds) or an iteration limit")
    return criteria[0] if len(criteria) == 1 else MultipleCriteria(criteria)


def solve_cvrp(instance: CvrpInstance, seconds: float | None = 10.0, seed: int = 0,
               iterations: int | None = None) -> VrpResult:
    """Solve a CVRPLIB instance with PyVRP; the cost is recomputed from the instance."""
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve

    n = instance.dimension
    coords = instance.coords if instance.coords is not None else np.zeros((n, 2))
    locations = [Location(x=float(x), y=float(y)) for x, y in coords]
    customers = instance.customers
    distance = instance.distance.astype(np.int64).copy()
    service = int(round(instance.service_time))
    if service:      # DCVRP: a route's length counts service times (constant in the cost)
        distance[:, customers] += service
        np.fill_diagonal(distance, 0)
    clients = [Client(location=int(c), delivery=[int(instance.demand[c])]) for c in customers]
    max_distance = (np.iinfo(np.int64).max if instance.max_distance is None
                    else int(instance.max_distance))
    vehicle = VehicleType(num_available=instance.vehicles or len(customers),
                          capacity=[instance.capacity], start_depot=0, end_depot=0,
                          max_distance=max_distance)
    data = ProblemData(locations, clients, [Depot(location=instance.depot)], [vehicle],
                       [distance], [np.zeros_like(distance)])
    t0 = time.perf_counter()
    result = solve(data, _stop(seconds, iterations), seed=int(seed), collect_stats=False,
                   display=False)
    elapsed = time.perf_counter() - t0
    routes = [[int(customers[a.idx]) for a in route.schedule() if a.is_client()]
              for route in result.best.routes()]
    routes = [r for r in routes if r]
    feasible = bool(result.is_feasible()) and not instance.check_routes(routes)
    return VrpResult(cost=instance.route_cost(routes), routes=routes, feasible=feasible,
                     seconds=elapsed, iterations=int(result.num_iterations))


@dataclass
class TourProblem:
    """One day's collection: location 0 the garage, 1 the transfer site, 2.. the stops.

    ``travel_s`` and ``distance_m`` are square matrices over all locations (shortest
    paths on the street graph); the solver minimises travel time plus overtime.
    """

    travel_s: np.ndarray
    distance_m: np.ndarray
    load_l: np.ndarray                 # per stop (len = locations - 2)
    service_s: np.ndarray              # per stop
    capacity_l: int
    vehicles: int
    shift_s: int
    unload_s: int = 900                # emptying at the transfer site
    max_overtime_s: int = 4 * 3600
    overtime_weight: int = 2           # an overtime second costs this many travel seconds


@dataclass
class Tour:
    """A truck's day: ``legs`` is the sequence of locations visited after the garage
    (stops are >= 2; 1 is an unload at the transfer site, the last one ends the tour)."""

    vehicle: int
    legs: list[int]
    planned_s: float
    planned_m: float


@dataclass
class TourPlan:
    tours: list[Tour]
    feasible: bool
    cost: int
    seconds: float
    iterations: int
    unplanned: list[int] = field(default_factory=list)   # stops the plan leaves out


def plan_tours(problem: TourProblem, seed: int = 0, seconds: float | None = 5.0,
               iterations: int | None = 2000) -> TourPlan:
    """The day's tours from the garage through the stops, unloading at the transfer site."""
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve

    n_stops = len(problem.load_l)
    if n_stops == 0:
        return TourPlan([], True, 0, 0.0, 0)
    n = n_stops + 2
    locations = [Location(x=0.0, y=0.0) for _ in range(n)]
    depots = [Depot(location=0), Depot(location=1, service_duration=int(problem.unload_s))]
    capacity = int(problem.capacity_l)
    clients = [Client(location=k + 2, delivery=[min(int(round(problem.load_l[k])), capacity)],
                      service_duration=int(round(problem.service_s[k])))
               for k in range(n_stops)]
    vehicle = VehicleType(num_available=int(problem.vehicles), capacity=[capacity],
                          start_depot=0, end_depot=1, reload_depots=[1],
                          shift_duration=int(problem.shift_s),
                          max_overtime=int(problem.max_overtime_s),
                          unit_overtime_cost=int(problem.overtime_weight),
                          unit_distance_cost=0, unit_duration_cost=1)
    travel = np.asarray(np.round(problem.travel_s), dtype=np.int64)
    data = ProblemData(locations, clients, depots, [vehicle],
                       [np.asarray(np.round(problem.distance_m), dtype=np.int64)], [travel])
    t0 = time.perf_counter()
    result = solve(data, _stop(seconds, iterations), seed=int(seed), collect_stats=False,
                   display=False)
    elapsed = time.perf_counter() - t0
    tours, planned = [], set()
    for k, route in enumerate(result.best.routes()):
        legs = []
        for a in route.schedule()[1:]:
            if a.is_client():
                legs.append(int(a.idx) + 2)
                planned.add(int(a.idx))
            elif a.is_depot():
                legs.append(1)          # a reload or the end at the transfer site
        if any(leg >= 2 for leg in legs):
            tours.append(Tour(vehicle=k, legs=legs, planned_s=float(route.duration()),
                              planned_m=float(route.distance())))
    unplanned = [k + 2 for k in range(n_stops) if k not in planned]
    return TourPlan(tours=tours, feasible=bool(result.is_feasible()), cost=int(result.cost())
                    if result.is_feasible() else -1, seconds=elapsed,
                    iterations=int(result.num_iterations), unplanned=unplanned)
