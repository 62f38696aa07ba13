"""Drawing one re-id style crop of a synthetic identity.

The figure is a simple articulated body (head, torso, two-segment arms and legs) dressed
according to the identity.  Everything an identity does not fix varies per image, as in
real re-id crops: view (front/back/side), stance and arm swing, position and scale in the
crop, crop size, background scene and clutter, lighting and colour cast, garment colour
jitter, blur, low resolution, occlusion and JPEG quality.  Those nuisances are what make
the retrieval task non-trivial: the same identity must be matched across them, and some
images end up genuinely ambiguous (a dark red jacket in dim light looks brown).

Drawing happens on a 2x canvas that is box-downsampled at the end (cheap anti-aliasing).
Body geometry is expressed in "body units": the figure is 1.0 tall from the top of the
head (y=0) to the soles (y=1), x=0 is its centre line.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .attributes import COLOURS, HAIR_COLOURS, SKIN_TONES, Identity, sample_identity

SUPERSAMPLE = 2
VIEWS = ("front", "back", "left", "right")

RGB = tuple[int, int, int]
Point = tuple[float, float]

# Body proportions (body units).
HEAD_Y, HEAD_RX, HEAD_RY = 0.068, 0.047, 0.06
SHOULDER_Y, HIP_Y = 0.165, 0.49
UPPER_ARM, FOREARM = 0.165, 0.15
THIGH, SHIN = 0.235, 0.225
ANKLE_LIFT = 0.035  # sole below the ankle joint


# --------------------------------------------------------------------------- colours


def _clip(values) -> RGB:
    return tuple(int(min(255, max(0, round(v)))) for v in values)


def jitter(rgb: RGB, rng: random.Random, spread: float = 14.0) -> RGB:
    """Per-image colour of a garment: base colour with per-channel noise and a shade factor."""
    shade = rng.uniform(0.82, 1.12)
    return _clip(c * shade + rng.gauss(0.0, spread) for c in rgb)


def shade(rgb: RGB, factor: float) -> RGB:
    """A darker (factor < 1) or lighter (> 1) version of a colour, for seams and folds."""
    if factor > 1:
        return _clip(c + (255 - c) * (factor - 1) for c in rgb)
    return _clip(c * factor for c in rgb)


@dataclass(frozen=True)
class Palette:
    """The jittered colours of one image of an identity."""

    skin: RGB
    hair: RGB | None
    upper: RGB
    lower: RGB | None
    shoes: RGB
    bag: RGB | None
    hat: RGB | None


def _palette(identity: Identity, rng: random.Random) -> Palette:
    def maybe(table: dict, name: str | None) -> RGB | None:
        return None if name is None else jitter(table[name], rng)

    return Palette(
        skin=jitter(SKIN_TONES[identity.skin], rng, 8.0),
        hair=maybe(HAIR_COLOURS, identity.hair_colour),
        upper=jitter(COLOURS[identity.upper_colour], rng),
        lower=maybe(COLOURS, identity.lower_colour),
        shoes=jitter(COLOURS[identity.shoes_colour], rng),
        bag=maybe(COLOURS, identity.bag_colour),
        hat=maybe(COLOURS, identity.hat_colour),
    )


# --------------------------------------------------------------------------- pose


@dataclass(frozen=True)
class Pose:
    """Per-image body configuration.

    ``facing`` is +1/-1 for side views (the direction the face points) and 0 otherwise.
    Angles are radians from the vertical; positive means towards +x.
    """

    view: str
    facing: int
    shoulder_half: float
    hip_half: float
    arms: tuple[tuple[float, float], tuple[float, float]]  # (upper arm, forearm) per arm
    legs: tuple[tuple[float, float], tuple[float, float]]  # (thigh, shin) per leg
    bag_side: int  # which side a handbag or shoulder bag hangs on (-1 or +1)


def _sample_pose(identity: Identity, rng: random.Random) -> Pose:
    view = rng.choices(VIEWS, weights=(0.36, 0.3, 0.17, 0.17))[0]
    bag_side = rng.choice((-1, 1))
    if view in ("left", "right"):
        return _side_pose(view, rng, bag_side)
    broad = 1.0 if identity.gender == "man" else 0.88
    spread = rng.uniform(0.0, 0.1)
    legs = tuple((side * spread, side * spread * rng.uniform(0.5, 1.0)) for side in (-1, 1))
    arms = tuple((side * rng.uniform(0.04, 0.25), side * rng.uniform(-0.05, 0.3)) for side in (-1, 1))
    return Pose(view, 0, 0.105 * broad, 0.075 + 0.08 * (1 - broad), arms, legs, bag_side)


def _side_pose(view: str, rng: random.Random, bag_side: int) -> Pose:
    """Walking in profile: legs in stride, arms swinging against the legs, elbows bent forward."""
    f = 1 if view == "right" else -1
    stride = rng.uniform(0.04, 0.38)
    swing = stride * rng.uniform(0.6, 1.2)
    bend = rng.uniform(0.05, 0.5)
    front_leg = (f * stride, f * (stride - rng.uniform(0.0, 0.1)))
    back_leg = (-f * stride, f * (rng.uniform(0.0, 0.35) - stride))
    arms = ((-f * swing, f * (bend - swing)), (f * swing, f * (swing + bend)))
    return Pose(view, f, 0.058, 0.056, arms, (front_leg, back_leg), bag_side)


def _handbag_arm(pose: Pose) -> int:
    """The arm holding a handbag: the near one in profile, else the one on the bag's side."""
    return 1 if pose.facing or pose.bag_side > 0 else 0


def _handbag_pose(pose: Pose) -> Pose:
    """The arm that carries a handbag hangs nearly straight down."""
    arms = list(pose.arms)
    outward = 0.02 * pose.facing if pose.facing else 0.08 * pose.bag_side
    arms[_handbag_arm(pose)] = (outward, outward)
    return replace(pose, arms=tuple(arms))


def _segment(start: Point, angle: float, length: float) -> Point:
    return (start[0] + math.sin(angle) * length, start[1] + math.cos(angle) * length)


@dataclass(frozen=True)
class Skeleton:
    """Joint positions in body units; index 0 is the image-left (or far) limb."""

    shoulders: tuple[Point, Point]
    elbows: tuple[Point, Point]
    hands: tuple[Point, Point]
    hips: tuple[Point, Point]
    knees: tuple[Point, Point]
    ankles: tuple[Point, Point]


def _skeleton(pose: Pose) -> Skeleton:
    """Forward kinematics: shoulders and hips are fixed, limbs hang at the pose's angles."""
    if pose.facing:
        shoulders = ((-0.01 * pose.facing, SHOULDER_Y + 0.01), (0.01 * pose.facing, SHOULDER_Y + 0.01))
        hips = ((0.0, HIP_Y + 0.02), (0.0, HIP_Y + 0.02))
    else:
        sx = pose.shoulder_half - 0.018
        shoulders = ((-sx, SHOULDER_Y + 0.01), (sx, SHOULDER_Y + 0.01))
        hips = ((-0.042, HIP_Y + 0.02), (0.042, HIP_Y + 0.02))
    elbows = tuple(_segment(s, arm[0], UPPER_ARM) for s, arm in zip(shoulders, pose.arms))
    hands = tuple(_segment(e, arm[1], FOREARM) for e, arm in zip(elbows, pose.arms))
    knees = tuple(_segment(h, leg[0], THIGH) for h, leg in zip(hips, pose.legs))
    ankles = tuple(_segment(k, leg[1], SHIN) for k, leg in zip(knees, pose.legs))
    return Skeleton(shoulders, elbows, hands, hips, knees, ankles)


# --------------------------------------------------------------------------- canvas


class Canvas:
    """An ImageDraw that takes body-unit coordinates for a figure placed in the crop."""

    def __init__(self, image: Image.Image, centre_x: float, top: float, height: float):
        self.draw = ImageDraw.Draw(image)
        self.cx, self.top, self.h = centre_x, top, height

    def pt(self, p: Point) -> Point:
        return (self.cx + p[0] * self.h, self.top + p[1] * self.h)

    def size(self, v: float) -> float:
        return v * self.h

    def _box(self, centre: Point, rx: float, ry: float) -> tuple[float, float, float, float]:
        x, y = self.pt(centre)
        return (x - self.size(rx), y - self.size(ry), x + self.size(rx), y + self.size(ry))

    def ellipse(self, centre: Point, rx: float, ry: float, fill: RGB) -> None:
        self.draw.ellipse(self._box(centre, rx, ry), fill=fill)

    def pieslice(self, centre: Point, rx: float, ry: float, start: float, end: float, fill: RGB) -> None:
        """An ellipse sector including the centre (angles in degrees, clockwise from 3 o'clock)."""
        self.draw.pieslice(self._box(centre, rx, ry), start, end, fill=fill)

    def chord(self, centre: Point, rx: float, ry: float, start: float, end: float, fill: RGB) -> None:
        """An ellipse cut by the straight line between the two angles."""
        self.draw.chord(self._box(centre, rx, ry), start, end, fill=fill)

    def polygon(self, points: list[Point], fill: RGB) -> None:
        self.draw.polygon([self.pt(p) for p in points], fill=fill)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: RGB, radius: float = 0.0) -> None:
        (a, b), (c, d) = self.pt((min(x0, x1), min(y0, y1))), self.pt((max(x0, x1), max(y0, y1)))
        self.draw.rounded_rectangle((a, b, c, d), radius=self.size(radius), fill=fill)

    def limb(self, a: Point, b: Point, width: float, fill: RGB) -> None:
        """A thick segment with round ends (arms, legs, straps)."""
        w = max(1, round(self.size(width)))
        self.draw.line([self.pt(a), self.pt(b)], fill=fill, width=w)
        for p in (a, b):
            self.ellipse(p, width / 2, width / 2, fill)


def _lerp(a: Point, b: Point, t: float) -> Point:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


# --------------------------------------------------------------------------- figure


def _limb_widths(identity: Identity) -> tuple[float, float, float]:
    """(arm, thigh, shin) widths; women are drawn slightly slimmer."""
    k = 1.0 if identity.gender == "man" else 0.9
    return 0.04 * k, 0.064 * k, 0.05 * k


def _draw_legs(c: Canvas, identity: Identity, pal: Palette, sk: Skeleton, pose: Pose) -> None:
    """Legs in the lower garment (trousers, jeans), or bare skin with shorts on the thighs."""
    _, thigh_w, shin_w = _limb_widths(identity)
    covered = identity.lower_type in ("trousers", "jeans")
    leg = pal.lower if covered else pal.skin
    for hip, knee, ankle in zip(sk.hips, sk.knees, sk.ankles):
        c.limb(hip, knee, thigh_w, leg)
        c.limb(knee, ankle, shin_w, leg)
        if identity.lower_type == "shorts":
            c.limb(hip, _lerp(hip, knee, 0.75), thigh_w + 0.008, pal.lower)
    if identity.lower_type in ("trousers", "jeans", "shorts"):
        hw = pose.hip_half
        waist, crotch = HIP_Y - 0.02, HIP_Y + 0.06
        c.polygon([(-hw, waist), (hw, waist), (hw * 0.95, crotch), (-hw * 0.95, crotch)], pal.lower)


def _draw_shoe(c: Canvas, identity: Identity, pal: Palette, ankle: Point, facing: int) -> None:
    """A shoe under the ankle: boots add a shaft, sneakers a light sole, sandals show the foot."""
    _, _, shin_w = _limb_widths(identity)
    x, y = ankle
    centre, rx = ((x + facing * 0.022, y + 0.02), 0.05) if facing else ((x, y + 0.02), 0.032)
    kind = identity.shoes_type
    if kind == "boots":
        c.limb((x, y - 0.085), (x, y), shin_w + 0.01, pal.shoes)
    if kind == "sandals":
        c.ellipse(centre, rx * 0.9, 0.017, pal.skin)
        c.rect(centre[0] - rx * 0.8, y + 0.008, centre[0] + rx * 0.8, y + 0.018, pal.shoes)
        c.rect(centre[0] - rx, y + 0.03, centre[0] + rx, y + 0.037, pal.shoes)
        return
    c.ellipse(centre, rx, 0.02, pal.shoes)
    if kind == "sneakers":  # the light sole band is what makes sneakers look like sneakers
        sole = (200, 200, 200) if identity.shoes_colour == "white" else (235, 235, 232)
        c.rect(centre[0] - rx, y + 0.029, centre[0] + rx, y + 0.038, sole, radius=0.004)


def _hem(identity: Identity) -> tuple[float, float]:
    """(hem height, flare) of the upper garment; coats and dresses reach further down."""
    return {"coat": (0.63, 0.025), "dress": (0.72, 0.07), "jacket": (HIP_Y + 0.025, 0.005)}.get(
        identity.upper_type, (HIP_Y + 0.01, 0.0)
    )


def _torso_outline(identity: Identity, pose: Pose) -> list[Point]:
    """Shoulders down to the hem, narrowing at the waist when the garment goes past it."""
    sw, hw = pose.shoulder_half, pose.hip_half + 0.004
    hem, flare = _hem(identity)
    top = SHOULDER_Y - 0.01
    waist = [(hw, HIP_Y), (-hw, HIP_Y)] if hem > HIP_Y + 0.03 else []
    return [(-sw, top), (sw, top)] + waist[:1] + [(hw + flare, hem), (-hw - flare, hem)] + waist[1:]


def _draw_skirt(c: Canvas, pose: Pose, colour: RGB, length: float) -> None:
    """A flared trapezoid from the waist (a skirt, or the lower part of a dress)."""
    hw = pose.hip_half
    c.polygon([(-hw, HIP_Y - 0.02), (hw, HIP_Y - 0.02), (hw + 0.06, length), (-hw - 0.06, length)], colour)


def _draw_upper(c: Canvas, identity: Identity, pal: Palette, pose: Pose) -> None:
    """Torso in the upper garment with the small cues that tell garment types apart."""
    colour = pal.upper
    c.polygon(_torso_outline(identity, pose), colour)
    if not pose.facing:
        for x in (-pose.shoulder_half + 0.025, pose.shoulder_half - 0.025):
            c.ellipse((x, SHOULDER_Y + 0.012), 0.027, 0.022, colour)
    kind, front = identity.upper_type, pose.view == "front"
    dark, light = shade(colour, 0.7), shade(colour, 1.25)
    if kind == "t-shirt" and front:
        c.ellipse((0, SHOULDER_Y - 0.008), 0.022, 0.012, pal.skin)
    elif kind == "shirt" and front:
        c.polygon([(-0.028, SHOULDER_Y - 0.012), (0, SHOULDER_Y + 0.03), (0.028, SHOULDER_Y - 0.012)], light)
        c.rect(-0.003, SHOULDER_Y + 0.03, 0.003, HIP_Y, dark)
    elif kind in ("jacket", "coat") and front:
        c.polygon([(-0.03, SHOULDER_Y - 0.012), (0, SHOULDER_Y + 0.05), (0.03, SHOULDER_Y - 0.012)], dark)
        c.rect(-0.003, SHOULDER_Y + 0.05, 0.003, _hem(identity)[0], dark)
    elif kind == "hoodie":
        hood_y = SHOULDER_Y + (0.0 if front else 0.03)
        c.ellipse((0, hood_y), 0.045, 0.022 if front else 0.04, dark)
        if front:
            c.rect(-0.055, HIP_Y - 0.1, 0.055, HIP_Y - 0.04, dark, radius=0.01)
    elif kind == "sweater" and not pose.facing:
        c.rect(-pose.hip_half - 0.004, HIP_Y - 0.005, pose.hip_half + 0.004, HIP_Y + 0.012, dark)


def _draw_arm(c: Canvas, identity: Identity, pal: Palette, sk: Skeleton, index: int) -> None:
    """An arm; the sleeve length is visible as garment colour vs. skin."""
    arm_w, _, _ = _limb_widths(identity)
    shoulder, elbow, hand = sk.shoulders[index], sk.elbows[index], sk.hands[index]
    if identity.sleeves == "long":
        sleeve_w = arm_w + (0.008 if identity.upper_type in ("coat", "jacket") else 0.0)
        c.limb(shoulder, elbow, sleeve_w, pal.upper)
        c.limb(elbow, _lerp(elbow, hand, 0.85), sleeve_w, pal.upper)
    else:
        c.limb(shoulder, elbow, arm_w * 0.9, pal.skin)
        c.limb(elbow, hand, arm_w * 0.85, pal.skin)
        c.limb(shoulder, _lerp(shoulder, elbow, 0.5), arm_w + 0.008, pal.upper)
    c.ellipse(hand, 0.021, 0.023, pal.skin)


def _draw_head(c: Canvas, pal: Palette, pose: Pose) -> None:
    c.limb((0, HEAD_Y + 0.04), (0, SHOULDER_Y), 0.034, pal.skin)
    f = pose.facing
    c.ellipse((f * 0.004, HEAD_Y), HEAD_RX, HEAD_RY, pal.skin)
    eye = shade(pal.skin, 0.35)
    if pose.view == "front":
        for x in (-0.017, 0.017):
            c.ellipse((x, HEAD_Y - 0.003), 0.0055, 0.005, eye)
        c.ellipse((0, HEAD_Y + 0.032), 0.012, 0.004, shade(pal.skin, 0.7))
    elif f:
        c.ellipse((f * 0.048, HEAD_Y + 0.008), 0.01, 0.012, pal.skin)
        c.ellipse((f * 0.028, HEAD_Y - 0.004), 0.005, 0.005, eye)


def _draw_long_hair_behind(c: Canvas, pal: Palette, pose: Pose) -> None:
    """Long hair seen behind the head and shoulders (front and side views)."""
    if pose.facing:
        back = -pose.facing
        c.rect(back * 0.055, HEAD_Y - 0.03, pose.facing * 0.01, 0.24, pal.hair, radius=0.03)
    else:
        c.rect(-HEAD_RX - 0.01, HEAD_Y - 0.02, HEAD_RX + 0.01, 0.235, pal.hair, radius=0.03)


def _draw_hair(c: Canvas, identity: Identity, pal: Palette, pose: Pose) -> None:
    """Hair on the head; from behind it covers the head (and the back if long)."""
    centre, rx, ry = (pose.facing * 0.004, HEAD_Y - 0.004), HEAD_RX + 0.006, HEAD_RY + 0.008
    if pose.view == "back":  # long hair falls over the neck and back, short hair shows the nape
        if identity.hair_length == "long":
            c.rect(-0.058, HEAD_Y, 0.058, 0.25, pal.hair, radius=0.03)
            c.ellipse(centre, rx, ry, pal.hair)
        else:
            c.chord(centre, rx, ry, 160, 380, pal.hair)
    elif pose.facing > 0:
        c.pieslice(centre, rx, ry, 110, 345, pal.hair)
    elif pose.facing < 0:
        c.pieslice(centre, rx, ry, 195, 430, pal.hair)
    else:
        c.pieslice(centre, rx, ry, 180, 360, pal.hair)
        if identity.hair_length == "long":
            for side in (-1, 1):
                x0, x1 = side * (HEAD_RX - 0.004), side * (HEAD_RX + 0.01)
                c.rect(x0, HEAD_Y - 0.03, x1, HEAD_Y + 0.07, pal.hair, radius=0.008)


def _draw_hat(c: Canvas, identity: Identity, pal: Palette, pose: Pose) -> None:
    colour, dark, f = pal.hat, shade(pal.hat, 0.72), pose.facing
    if identity.hat_type == "cap":
        c.pieslice((f * 0.004, HEAD_Y - 0.006), HEAD_RX + 0.007, 0.056, 180, 360, colour)
        if pose.view == "front":
            c.ellipse((0, HEAD_Y - 0.008), 0.05, 0.011, dark)
        elif f:
            c.ellipse((f * 0.055, HEAD_Y - 0.01), 0.035, 0.008, dark)
    elif identity.hat_type == "hat":
        c.rect(-0.043, HEAD_Y - 0.09, 0.043, HEAD_Y - 0.025, colour, radius=0.015)
        c.rect(-0.044, HEAD_Y - 0.045, 0.044, HEAD_Y - 0.03, dark)
        c.ellipse((0, HEAD_Y - 0.026), 0.082, 0.016 if not f else 0.01, colour)
    else:  # beanie
        c.pieslice((f * 0.004, HEAD_Y - 0.002), HEAD_RX + 0.008, 0.068, 180, 360, colour)
        c.rect(-HEAD_RX - 0.008, HEAD_Y - 0.014, HEAD_RX + 0.008, HEAD_Y - 0.002, dark)


def _draw_backpack_behind(c: Canvas, pal: Palette, pose: Pose) -> None:
    """The pack seen past the body: at the sides from the front, sticking out in profile."""
    if pose.facing:
        back = -pose.facing
        c.rect(back * 0.035, 0.19, back * 0.15, 0.45, pal.bag, radius=0.025)
        c.rect(back * 0.13, 0.3, back * 0.16, 0.42, shade(pal.bag, 0.75), radius=0.01)
    else:
        c.rect(-pose.shoulder_half - 0.024, 0.2, pose.shoulder_half + 0.024, 0.44, pal.bag, radius=0.025)


def _draw_backpack_front(c: Canvas, pal: Palette, pose: Pose) -> None:
    """Shoulder straps over the chest (front) or over the shoulder (profile)."""
    if pose.facing:
        c.limb((pose.facing * 0.012, SHOULDER_Y), (pose.facing * 0.03, 0.37), 0.016, pal.bag)
        return
    for side in (-1, 1):
        x = side * (pose.shoulder_half - 0.04)
        c.limb((x, SHOULDER_Y - 0.005), (x - side * 0.008, 0.4), 0.02, pal.bag)


def _draw_backpack_back(c: Canvas, pal: Palette) -> None:
    dark = shade(pal.bag, 0.72)
    c.rect(-0.088, 0.19, 0.088, 0.455, pal.bag, radius=0.028)
    c.rect(-0.088, 0.19, 0.088, 0.26, dark, radius=0.028)
    c.rect(-0.058, 0.36, 0.058, 0.43, dark, radius=0.012)


def _draw_shoulder_bag(c: Canvas, pal: Palette, pose: Pose) -> None:
    """Strap across the body and a bag at the opposite hip."""
    s = pose.bag_side if not pose.facing else -pose.facing
    if pose.facing:
        top, bag_x = (pose.facing * 0.02, SHOULDER_Y), s * 0.02
    else:
        top, bag_x = (-s * (pose.shoulder_half - 0.03), SHOULDER_Y), s * (pose.hip_half + 0.02)
    c.limb(top, (bag_x, HIP_Y), 0.013, pal.bag)
    c.rect(bag_x - 0.052, HIP_Y - 0.012, bag_x + 0.052, HIP_Y + 0.075, pal.bag, radius=0.01)
    c.rect(bag_x - 0.052, HIP_Y - 0.012, bag_x + 0.052, HIP_Y + 0.025, shade(pal.bag, 0.75), radius=0.01)


def _draw_handbag(c: Canvas, pal: Palette, hand: Point) -> None:
    x, y = hand
    c.limb((x - 0.025, y + 0.025), (x, y - 0.004), 0.008, shade(pal.bag, 0.7))
    c.limb((x + 0.025, y + 0.025), (x, y - 0.004), 0.008, shade(pal.bag, 0.7))
    c.polygon([(x - 0.04, y + 0.02), (x + 0.04, y + 0.02), (x + 0.05, y + 0.1), (x - 0.05, y + 0.1)], pal.bag)


def draw_figure(c: Canvas, identity: Identity, pal: Palette, pose: Pose) -> None:
    """Draw a person back to front: things behind the body, legs, torso, arms, head, hat."""
    sk = _skeleton(pose)
    view, bag = pose.view, identity.bag_type
    near_arms = (1,) if pose.facing else (0, 1)
    if pose.facing:
        _draw_arm(c, identity, pal, sk, 0)
    if bag == "backpack" and view != "back":
        _draw_backpack_behind(c, pal, pose)
    if identity.hair_length == "long" and view != "back":
        _draw_long_hair_behind(c, pal, pose)
    _draw_legs(c, identity, pal, sk, pose)
    for ankle in sk.ankles:
        _draw_shoe(c, identity, pal, ankle, pose.facing)
    if identity.lower_type == "skirt":
        _draw_skirt(c, pose, pal.lower, 0.7)
    elif identity.upper_type == "dress":
        _draw_skirt(c, pose, pal.upper, 0.72)
    _draw_upper(c, identity, pal, pose)
    if bag == "backpack" and view == "back":
        _draw_backpack_back(c, pal)
    if bag == "shoulder bag":
        _draw_shoulder_bag(c, pal, pose)
    for index in near_arms:
        _draw_arm(c, identity, pal, sk, index)
    if bag == "backpack" and view != "back":
        _draw_backpack_front(c, pal, pose)
    if bag == "handbag":
        _draw_handbag(c, pal, sk.hands[_handbag_arm(pose)])
    _draw_head(c, pal, pose)
    if pal.hair is not None:
        _draw_hair(c, identity, pal, pose)
    if identity.hat_type is not None:
        _draw_hat(c, identity, pal, pose)


# --------------------------------------------------------------------------- scene


def _muted(rng: random.Random, low: float = 70, high: float = 205) -> RGB:
    """A desaturated scene colour (walls, pavement, street furniture)."""
    grey = rng.uniform(low, high)
    return _clip(grey + rng.gauss(0.0, 16) for _ in range(3))


def _background(
    rng: random.Random, noise: np.random.Generator, w: int, h: int, ground_y: float
) -> Image.Image:
    """Wall/ground gradients with blotchy and fine texture (vectorised: no per-pixel Python)."""
    y = np.arange(h, dtype=np.float32)[:, None]
    wall, ground = np.array(_muted(rng), np.float32), np.array(_muted(rng, 60, 180), np.float32)
    wall_grad, ground_grad = rng.uniform(-0.35, 0.35), rng.uniform(-0.3, 0.3)
    t_wall = y / max(ground_y, 1.0) - 0.5
    t_ground = (y - ground_y) / max(h - ground_y, 1.0) - 0.5
    rows = np.where(y < ground_y, wall * (1 + wall_grad * t_wall), ground * (1 + ground_grad * t_ground))
    cell = rng.choice((6, 10, 16))
    blotch = noise.normal(0.0, rng.uniform(3, 14), (h // cell + 1, w // cell + 1, 1)).astype(np.float32)
    blotch = np.repeat(np.repeat(blotch, cell, axis=0), cell, axis=1)[:h, :w]
    grain = noise.normal(0.0, rng.uniform(2, 9), (h, w, 1)).astype(np.float32)
    image = rows[:, None, :] + blotch + grain
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def _windows(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, ground_y: float) -> None:
    colour = _muted(rng, 30, 230)
    size = rng.uniform(0.12, 0.3) * w
    gap = size * rng.uniform(1.3, 2.0)
    x0, y0 = rng.uniform(-size, 0), rng.uniform(-size, size)
    for row in range(int(ground_y // gap) + 1):
        for col in range(int(w // gap) + 2):
            x, y = x0 + col * gap, y0 + row * gap
            if y + size < ground_y:
                draw.rectangle((x, y, x + size, y + size * 1.3), fill=colour)


def _pole(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, ground_y: float) -> None:
    x, width = rng.uniform(0, w), rng.uniform(0.02, 0.07) * w
    draw.rectangle((x, 0, x + width, ground_y + rng.uniform(0, 0.05) * h), fill=_muted(rng, 20, 120))


def _car(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, ground_y: float) -> None:
    """A parked-car block; its colour comes from the garment palette on purpose (distractor)."""
    colour = jitter(rng.choice(list(COLOURS.values())), rng)
    height = rng.uniform(0.15, 0.3) * h
    x0, x1 = rng.uniform(-0.8, 0.3) * w, rng.uniform(0.7, 1.8) * w
    bottom = ground_y + rng.uniform(-0.02, 0.04) * h
    draw.rounded_rectangle((x0, bottom - height, x1, bottom), radius=height * 0.25, fill=colour)
    left, right = x0 + height * 0.3, x1 - height * 0.3
    if right > left:  # a short car seen in a tall crop has no room for a window
        draw.rectangle((left, bottom - height * 0.9, right, bottom - height * 0.6), fill=shade(colour, 0.5))
    wheel = height * 0.22
    for x in (x0 + height * 0.6, x1 - height * 0.6):
        draw.ellipse((x - wheel, bottom - wheel, x + wheel, bottom + wheel), fill=(25, 25, 25))


def _bush(draw: ImageDraw.ImageDraw, rng: random.Random, w: int, h: int, ground_y: float) -> None:
    rx, ry = rng.uniform(0.2, 0.6) * w, rng.uniform(0.05, 0.15) * h
    x = rng.uniform(0, w)
    leaves = jitter((60, 110, 55), rng, 20)
    draw.ellipse((x - rx, ground_y - 2 * ry, x + rx, ground_y + ry * 0.3), fill=leaves)


def _bystander(image: Image.Image, rng: random.Random, w: int, h: int, ground_y: float) -> None:
    """Another pedestrian, far away or cut by the crop border, wearing random clothes."""
    identity = sample_identity(rng)
    pose = _sample_pose(identity, rng)
    if rng.random() < 0.5:  # at the border, near the camera
        height = h * rng.uniform(0.75, 1.0)
        cx = rng.choice((-1, 1)) * w * rng.uniform(0.5, 0.7) + w / 2
        top = ground_y - height * rng.uniform(0.75, 0.95)
    else:  # in the distance
        height = h * rng.uniform(0.25, 0.5)
        cx, top = rng.uniform(0, w), ground_y - height * rng.uniform(0.9, 1.0)
    draw_figure(Canvas(image, cx, top, height), identity, _palette(identity, rng), pose)


def _clutter(image: Image.Image, rng: random.Random, ground_y: float) -> None:
    w, h = image.size
    draw = ImageDraw.Draw(image)
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        kind = rng.choices(("windows", "pole", "car", "bush", "bystander"), weights=(2, 2, 1.5, 1, 2.5))[0]
        if kind == "bystander":
            _bystander(image, rng, w, h, ground_y)
        else:
            {"windows": _windows, "pole": _pole, "car": _car, "bush": _bush}[kind](draw, rng, w, h, ground_y)


def _occlude(c: Canvas, rng: random.Random) -> None:
    """Cover at most ~30% of the figure's box (about 0.34 x 1.0 body units).

    Either a low object in front of the legs (car, bench, bicycle) or a tall one at one
    side (pole, sign, someone's shoulder).
    """
    colour = jitter(rng.choice(list(COLOURS.values())), rng) if rng.random() < 0.5 else _muted(rng, 20, 220)
    if rng.random() < 0.6:
        height = rng.uniform(0.12, 0.28)
        bottom = 1.0 + rng.uniform(-0.02, 0.05)
        c.rect(-0.3, bottom - height, 0.3, bottom, colour, radius=0.03)
        c.rect(-0.3, bottom - height, 0.3, bottom - height * 0.7, shade(colour, 0.7))
    else:
        side, width, height = rng.choice((-1, 1)), rng.uniform(0.08, 0.17), rng.uniform(0.3, 0.58)
        top = rng.uniform(0.0, 1.0 - height)
        c.rect(side * 0.17, top, side * (0.17 - width), top + height, colour, radius=0.02)


# --------------------------------------------------------------------------- camera


def _camera(image: Image.Image, rng: random.Random, noise: np.random.Generator) -> Image.Image:
    """Low resolution, blur, exposure, contrast, colour cast, uneven light and sensor noise."""
    w, h = image.size
    if rng.random() < 0.25:
        k = rng.uniform(0.4, 0.75)
        small = image.resize((max(8, round(w * k)), max(8, round(h * k))), Image.BILINEAR)
        image = small.resize((w, h), Image.BILINEAR)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.3)))
    pixels = np.asarray(image, dtype=np.float32)
    mean = pixels.mean()
    pixels = (pixels - mean) * rng.uniform(0.65, 1.25) + mean
    gain = math.exp(rng.uniform(math.log(0.55), math.log(1.35)))
    cast = np.array([rng.uniform(0.86, 1.14) for _ in range(3)], np.float32)
    ramp = 1 + rng.uniform(-0.25, 0.25) * np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    grain = noise.normal(0.0, rng.uniform(1, 7), pixels.shape).astype(np.float32)
    pixels = pixels * (gain * cast) * ramp + grain
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- entry points


def render_image(identity: Identity, rng: random.Random, height: int) -> tuple[Image.Image, str]:
    """One RGB crop of ``identity`` (about ``height`` +-25% tall) and the view it shows.

    All randomness comes from ``rng`` (seeded per image by the caller), so an image does
    not depend on which other images were drawn before it.
    """
    noise = np.random.default_rng(rng.getrandbits(64))
    pose = _sample_pose(identity, rng)
    if identity.bag_type == "handbag":
        pose = _handbag_pose(pose)
    out_h = max(32, round(height * rng.uniform(0.75, 1.25)))
    out_w = max(12, round(out_h * rng.uniform(0.33, 0.45)))
    w, h = out_w * SUPERSAMPLE, out_h * SUPERSAMPLE
    figure_h = h * rng.uniform(0.8, 0.96)
    top = (h - figure_h) * rng.uniform(0.15, 0.85)
    centre_x = w * (0.5 + rng.uniform(-0.1, 0.1))
    ground_y = top + figure_h * (1 - rng.uniform(0.02, 0.3))
    image = _background(rng, noise, w, h, ground_y)
    _clutter(image, rng, ground_y)
    canvas = Canvas(image, centre_x, top, figure_h)
    draw_figure(canvas, identity, _palette(identity, rng), pose)
    if rng.random() < 0.18:
        _occlude(canvas, rng)
    return _camera(image.reduce(SUPERSAMPLE), rng, noise), pose.view


def render_jpeg(identity: Identity, rng: random.Random, height: int) -> tuple[bytes, str]:
    """:func:`render_image` encoded as JPEG at a random quality (35-95), and the view."""
    image, view = render_image(identity, rng, height)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(35, 95))
    return buffer.getvalue(), view
