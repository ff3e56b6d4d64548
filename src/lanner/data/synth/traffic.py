"""A seeded, deterministic street over time: the moving actors one camera of the synthetic world sees.

Vehicles drive in their lanes (``Lane.direction`` +1 away from the camera, -1 toward it), entering at
the near or far end of the view and leaving at the other; each keeps a desired city speed and follows
the one ahead with a time headway, so a queue forms behind a slow truck and nobody drives through
anybody. Bicycles do the same in a strip along the road edges. People walk both ways on the
sidewalks; some cross the road at the crosswalk (``Layout.crosswalk_z_m``, or a mid-block point when
the street has none) once no vehicle is too close, and vehicles stop for them. Road signs stand still.

Every actor keeps its ``actor_id`` for its whole life (ids start at 1, the MOTChallenge convention),
and its animation ``phase`` (radians) advances with the distance it covers. Occlusion and objects
entering or leaving the picture follow from perspective; the renderer decides what is visible.

Example:
    >>> rng = np.random.default_rng(0)
    >>> scene = random_scene(rng, 320, 192, paint=False)
    >>> traffic = Traffic(scene, rng, density=1.0)
    >>> frames = [traffic.step(1 / 30) for _ in range(30)]
    >>> all(a.actor_id >= 1 for a in frames[-1])
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from lanner.data.synth.world import Actor, Scene, make_actor

# Spawn rates at density 1.0, per minute: per lane, per bicycle strip, per sidewalk and walking direction.
VEHICLES_PER_MIN = 20.0
BICYCLES_PER_MIN = 3.0
PEDESTRIANS_PER_MIN = 5.0
CROSSING_PROBABILITY = 0.35  # of the people who pass the crosswalk, how many cross the road
MAX_WAIT_S = 25.0  # how long someone waits at the curb for a gap in the traffic
MIN_GAP_M = 2.0  # bumper-to-bumper distance kept when stopped
HEADWAY_S = 1.2  # time gap kept while moving
ACCEL_MS2, BRAKE_MS2 = 2.0, 6.0
CROSSWALK_WIDTH_M = 3.0
PED_MAX_Z_M = 110.0  # people beyond this are a few pixels tall at any lanner resolution
STRIDE_M = {"person": 1.5, "bicycle": 4.5, "car": 2.0}  # metres per 2*pi of animation phase


@dataclass
class _Mover:
    """An actor plus its simulation state: the flow it moves in, its speeds and, for people, crossing state."""

    actor: Actor
    flow: int  # index into Traffic.flows, -1 for people and signs
    direction: int  # +1 along +z, -1 along -z
    speed: float  # m/s now
    desired: float  # m/s when unobstructed
    crossing: int = 0  # people: 0 walking along, +1/-1 crossing toward +x/-x, 2 waiting at the curb
    target_x: float = 0.0
    will_cross: bool = False
    waited_s: float = 0.0  # people: time spent waiting at the curb
    cross_z_m: float = 0.0  # people: where on the crosswalk they cross


@dataclass(frozen=True)
class _Flow:
    """A 1D stream of vehicles or bicycles at a fixed x (a lane, or the strip along a road edge)."""

    cls: str
    x_m: float
    direction: int
    rate_per_s: float
    speed_range: tuple[float, float]


class Traffic:
    """The moving world of one camera; ``step(dt)`` advances it and returns that frame's actors."""

    def __init__(self, scene: Scene, rng: np.random.Generator, density: float = 1.0, warmup_s: float | None = None):
        self.camera, self.layout, self.rng = scene.camera, scene.layout, rng
        self.density = density
        lo, hi = self.layout.road_x_m
        self.crosswalk_z_m = self.layout.crosswalk_z_m
        if self.crosswalk_z_m is None:
            self.crosswalk_z_m = float(rng.uniform(self.layout.z_near_m + 4.0, self.layout.z_near_m + 25.0))
        self.flows = _make_flows(self.layout, density)
        self.movers: list[_Mover] = []
        self.time_s = 0.0
        self._next_id = 1
        self._next_spawn = [float(rng.exponential(1.0 / f.rate_per_s)) for f in self.flows]
        self._next_walker = [float(rng.exponential(60.0 / self._walker_rate())) for _ in self._walk_streams()]
        self._road = (lo, hi)
        self._place_signs()
        self._place_walkers()
        warmup = warmup_s if warmup_s is not None else (self.layout.z_far_m - self.layout.z_near_m) / 8.0
        for _ in range(round(warmup / 0.1)):
            self._advance(0.1)

    def step(self, dt: float) -> list[Actor]:
        """Advance ``dt`` seconds and return copies of all actors alive now, sorted by ``actor_id``."""
        self._advance(dt)
        return self.actors()

    def actors(self) -> list[Actor]:
        """Copies of the actors alive now (safe to keep: the simulation mutates its own)."""
        return [dataclasses.replace(m.actor) for m in sorted(self.movers, key=lambda m: m.actor.actor_id)]

    def crosswalk_band_m(self) -> tuple[float, float]:
        """The z range (m) where people cross the road, including the stop lines before it."""
        return self.crosswalk_z_m - 1.0, self.crosswalk_z_m + CROSSWALK_WIDTH_M + 1.0

    def frames(self, n: int, fps: float) -> Iterator[list[Actor]]:
        """The actors of ``n`` consecutive frames at ``fps``."""
        for _ in range(n):
            yield self.step(1.0 / fps)

    # -- one time step ---------------------------------------------------------------------------------

    def _advance(self, dt: float) -> None:
        self.time_s += dt
        self._spawn_vehicles()
        self._spawn_walkers()
        blocked = any(m.crossing in (1, -1) for m in self.movers)
        for i, flow in enumerate(self.flows):
            self._move_flow(i, flow, dt, blocked)
        for m in self.movers:
            if m.flow < 0 and m.actor.cls == "person":
                self._move_walker(m, dt)
        self.movers = [m for m in self.movers if not self._gone(m)]

    def _move_flow(self, index: int, flow: _Flow, dt: float, crosswalk_blocked: bool) -> None:
        """Car following along one flow: keep ``MIN_GAP_M`` + ``HEADWAY_S``, stop for people crossing."""
        d = flow.direction
        queue = sorted((m for m in self.movers if m.flow == index), key=lambda m: -d * m.actor.z_m)
        stop_front = self._stop_line(d)
        leader_rear = math.inf
        for m in queue:
            front = d * m.actor.z_m + m.actor.length_m / 2
            gap = leader_rear - front
            if crosswalk_blocked and front <= stop_front + 0.1:
                gap = min(gap, stop_front - front)
            target = min(m.desired, max(0.0, (gap - MIN_GAP_M) / HEADWAY_S))
            m.speed = max(0.0, m.speed + float(np.clip(target - m.speed, -BRAKE_MS2 * dt, ACCEL_MS2 * dt)))
            moved = min(m.speed * dt, max(0.0, gap - 0.5))  # never into the one ahead
            _move(m, 0.0, d * moved)
            leader_rear = d * m.actor.z_m - m.actor.length_m / 2

    def _stop_line(self, direction: int) -> float:
        """Where a vehicle's front stops before the crosswalk, in its own travel coordinate (direction * z)."""
        near, far = self.crosswalk_z_m, self.crosswalk_z_m + CROSSWALK_WIDTH_M
        return near - 1.0 if direction > 0 else -(far + 1.0)

    def _move_walker(self, m: _Mover, dt: float) -> None:
        """Walk along the sidewalk; at the crosswalk maybe wait for a gap and cross to the other side."""
        a = m.actor
        z0 = m.cross_z_m
        if m.crossing == 0:
            step = m.direction * m.speed * dt
            if m.will_cross and (a.z_m - z0) * (a.z_m + step - z0) <= 0:
                _move(m, 0.0, z0 - a.z_m)
                m.crossing, m.will_cross = 2, False
                a.heading_rad = math.pi / 2 if m.target_x > a.x_m else -math.pi / 2
            else:
                _move(m, 0.0, step)
        elif m.crossing == 2:
            m.waited_s += dt
            if m.waited_s > MAX_WAIT_S:  # traffic never let up: give up and walk on
                m.crossing, a.heading_rad = 0, 0.0 if m.direction > 0 else math.pi
            elif self._road_clear():
                m.crossing = 1 if m.target_x > a.x_m else -1
        else:
            dx = m.crossing * m.speed * dt
            if (a.x_m + dx - m.target_x) * m.crossing >= 0:
                dx = m.target_x - a.x_m
                m.crossing = 0
                a.heading_rad = 0.0 if m.direction > 0 else math.pi
            _move(m, dx, 0.0)

    def _road_clear(self) -> bool:
        """No vehicle is within braking distance of the crosswalk or on it."""
        for m in self.movers:
            if m.flow < 0:
                continue
            d = self.flows[m.flow].direction
            front = d * m.actor.z_m + m.actor.length_m / 2
            rear = front - m.actor.length_m
            stop = self._stop_line(d)
            brake = m.speed**2 / (2 * 3.0) + 3.0
            if front > stop - brake and rear < stop + CROSSWALK_WIDTH_M + 2.0:
                return False
        return True

    def _gone(self, m: _Mover) -> bool:
        """Left the street: past the far end, or below the bottom of the picture for good."""
        if m.crossing or m.direction == 0:
            return False
        z, half = m.actor.z_m, m.actor.length_m / 2
        far = min(self.layout.z_far_m, PED_MAX_Z_M) if m.actor.cls == "person" else self.layout.z_far_m
        if m.direction > 0:
            return z - half > far
        return z + half < self._entry_z(m.actor) - 0.5 or z - half < 0.5

    # -- spawning --------------------------------------------------------------------------------------

    def _spawn_vehicles(self) -> None:
        for i, flow in enumerate(self.flows):
            if self.time_s < self._next_spawn[i]:
                continue
            mover = self._new_vehicle(i, flow)
            if mover is None:
                continue  # the entry is occupied: try again next step
            self.movers.append(mover)
            self._next_spawn[i] = self.time_s + float(self.rng.exponential(1.0 / flow.rate_per_s))

    def _new_vehicle(self, index: int, flow: _Flow) -> _Mover | None:
        d = flow.direction
        heading = 0.0 if d > 0 else math.pi
        actor = make_actor(self.rng, 0, flow.cls, flow.x_m, 0.0, heading)
        actor.z_m = self._entry_z(actor) if d > 0 else self.layout.z_far_m + actor.length_m / 2
        front = d * actor.z_m + actor.length_m / 2
        last = [m for m in self.movers if m.flow == index]
        desired = float(self.rng.uniform(*flow.speed_range))
        if actor.body_type in ("truck", "bus"):
            desired *= 0.85
        speed = desired
        if last:
            back = min(last, key=lambda m: d * m.actor.z_m)
            gap = d * back.actor.z_m - back.actor.length_m / 2 - front
            if gap < MIN_GAP_M + back.speed * HEADWAY_S * 0.5:
                return None
            speed = min(desired, back.speed + 1.0) if gap < 25.0 else desired
        actor.actor_id = self._take_id()
        return _Mover(actor, index, d, speed, desired)

    def _entry_z(self, actor: Actor) -> float:
        """The z (actor centre) where the actor's far top corner is just below the bottom of the picture."""
        cam = self.camera
        angle = cam.pitch_rad + math.atan((cam.height - 1 - cam.height * 0.5) / cam.focal_px)
        top = min(actor.height_m, cam.height_m - 0.5)
        z_top = (cam.height_m - top) / math.tan(angle)
        return max(actor.length_m / 2 + 0.5, z_top - actor.length_m / 2 - 0.2)

    def _walk_streams(self) -> list[tuple[int, int]]:
        return [(s, d) for s in range(len(self.layout.sidewalks)) for d in (1, -1)]

    def _walker_rate(self) -> float:
        return max(PEDESTRIANS_PER_MIN * self.density, 1e-6)

    def _spawn_walkers(self) -> None:
        for k, (s, d) in enumerate(self._walk_streams()):
            if self.time_s >= self._next_walker[k]:
                self._next_walker[k] = self.time_s + float(self.rng.exponential(60.0 / self._walker_rate()))
                self.movers.append(self._new_walker(s, d))

    def _new_walker(self, sidewalk: int, direction: int, z_m: float | None = None) -> _Mover:
        """A person on ``sidewalk`` walking along ``direction``, at ``z_m`` or else entering the view."""
        lo, hi = self.layout.sidewalks[sidewalk]
        x = float(self.rng.uniform(lo + 0.4, hi - 0.4))
        actor = make_actor(self.rng, self._take_id(), "person", x, 0.0, 0.0 if direction > 0 else math.pi)
        if z_m is None:
            z_m = self._entry_z(actor) if direction > 0 else min(self.layout.z_far_m, PED_MAX_Z_M)
        actor.z_m = float(z_m)
        speed = float(self.rng.uniform(1.1, 1.7))
        mover = _Mover(actor, -1, direction, speed, speed)
        others = [i for i in range(len(self.layout.sidewalks)) if i != sidewalk]
        if others and self.rng.random() < CROSSING_PROBABILITY:
            olo, ohi = self.layout.sidewalks[int(self.rng.choice(others))]
            mover.will_cross, mover.target_x = True, float(self.rng.uniform(olo + 0.4, ohi - 0.4))
            mover.cross_z_m = self.crosswalk_z_m + float(self.rng.uniform(0.4, CROSSWALK_WIDTH_M - 0.4))
        return mover

    def _place_walkers(self) -> None:
        """Start with the steady-state crowd spread along the sidewalks (walking 100 m takes over a minute)."""
        far = min(self.layout.z_far_m, PED_MAX_Z_M)
        near = self.layout.z_near_m
        for s, d in self._walk_streams():
            mean = self._walker_rate() / 60.0 * (far - near) / 1.4
            for _ in range(int(self.rng.poisson(mean))):
                self.movers.append(self._new_walker(s, d, float(self.rng.uniform(near, far))))

    def _place_signs(self) -> None:
        """Two to four static road signs at the curbs, facing the traffic that approaches them."""
        lo, hi = self._road
        near = self.layout.z_near_m
        for _ in range(int(self.rng.integers(2, 5))):
            right = bool(self.rng.random() < 0.5)
            x = hi + 0.5 if right else lo - 0.5
            z = float(self.rng.uniform(near + 4.0, near + 60.0))
            actor = make_actor(self.rng, self._take_id(), "road_sign", x, z, math.pi if right else 0.0)
            self.movers.append(_Mover(actor, -1, 0, 0.0, 0.0))

    def _take_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1


def _make_flows(layout, density: float) -> list[_Flow]:
    """One flow per lane, plus a bicycle strip inside each road edge going with the lane next to it."""
    flows = [
        _Flow("car", lane.x_m, lane.direction, VEHICLES_PER_MIN * density / 60.0, (9.0, 13.5)) for lane in layout.lanes
    ]
    lo, hi = layout.road_x_m
    lanes = sorted(layout.lanes, key=lambda lane: lane.x_m)
    if lanes and BICYCLES_PER_MIN * density > 0:
        for x, lane in ((lo + 0.55, lanes[0]), (hi - 0.55, lanes[-1])):
            flows.append(_Flow("bicycle", x, lane.direction, BICYCLES_PER_MIN * density / 60.0, (3.5, 6.0)))
    return [f for f in flows if f.rate_per_s > 0]


def _move(m: _Mover, dx: float, dz: float) -> None:
    """Move an actor and advance its animation phase by the distance covered."""
    a = m.actor
    a.x_m += dx
    a.z_m += dz
    stride = STRIDE_M.get(a.cls, 2.0)
    a.phase = (a.phase + 2 * math.pi * math.hypot(dx, dz) / stride) % (2 * math.pi)
