"""Build the ``safe_rl`` ViZDoom map programmatically with omgifol and write ``safe_rl.wad``.

The scenario follows *Progressive Safeguards* (Omi, Hasanbeig et al., 2024), whose own map is a
binary WAD we could not see: a damaging floor (lava) to cross, a radiation suit that makes it
safe, a plasma gun, and a boss. Our layout, in map units (x east, y north; the player faces
north at the start):

```
 y=544  +---------------------------+
        |        boss room          |   Hell Knight (500 HP) at (224, 448), ambush;
        |                      K    |   monsters cannot leave (block-monsters line at y=160)
 y=160  +-----------+-----+---------+
                    |door |              doorway x in [-64, 64]
 y=96   +-----------+-----+-----+
        |   lava (damaging floor)   |   sector special 5: 10 damage every 32 tics,
        |      P(gun)   c(cells)    |   none with the radiation suit
 y=-224 +---------------------------+
        |  S(suit)   start room     |
        |            @ (0, -576)    |
 y=-640 +---------------------------+
      x=-256                      x=256      (boss room: x in [-320, 320])
```

The boss cannot see the start room through the doorway (its line of sight through the door
hits the lava room's west wall), so the start room is safe until the agent enters the lava.

Everything is made from names the Freedoom 2 IWAD shipped with ViZDoom provides (checked by
``tests/test_doom_env.py``). The map is in Doom format without nodes: ViZDoom's ZDoom engine
builds nodes, blockmap and reject itself when they are absent.

``python -m safeguards.envs.doom.mapgen`` regenerates ``safe_rl.wad`` byte-identically.

>>> LAVA.contains(0, -64), LAVA.contains(0, -300), DOORWAY.contains(0, 100)
(True, False, True)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Rect", "START_ROOM", "LAVA", "DOORWAY", "BOSS_ROOM", "BOSS_AREA_MIN_Y",
           "PLAYER_START", "SUIT_POSITION", "GUN_POSITION", "BOSS_POSITION", "BOSS_NAME", "THING_TYPES",
           "FLATS", "TEXTURES", "build_map", "build_wad", "main"]


@dataclass(frozen=True)
class Rect:
    """An axis-aligned rectangle of the map, ``x0 <= x <= x1``, ``y0 <= y <= y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    def contains(self, x: float, y: float) -> bool:
        """Whether the point ``(x, y)`` lies inside (borders included)."""
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


START_ROOM = Rect(-256, -640, 256, -224)
LAVA = Rect(-256, -224, 256, 96)
DOORWAY = Rect(-64, 96, 64, 160)
BOSS_ROOM = Rect(-320, 160, 320, 544)
#: The boss area is everything north of the lava: the doorway and the boss room (the paper's
#: ``POSITION_Y > 96`` on its own map; on ours the same threshold happens to be right too).
BOSS_AREA_MIN_Y = 96

PLAYER_START = (0, -576)
SUIT_POSITION = (-192, -288)
GUN_POSITION = (0, -64)
CELLS_POSITION = (160, -64)
BOSS_POSITION = (224, 448)

#: The engine's class name of the boss (a Hell Knight), as objects info and labels report it.
BOSS_NAME = "HellKnight"
#: Doom thing numbers used by the map.
THING_TYPES = {"player1_start": 1, "radiation_suit": 2025, "plasma_gun": 2004, "cell_charge": 2047,
               "hell_knight": 69}
#: Flats and wall textures used (all present in ViZDoom's freedoom2.wad).
FLATS = {"floor": "FLOOR4_8", "ceiling": "CEIL3_5", "lava": "LAVA1", "boss_floor": "FLOOR7_2",
         "door_floor": "FLAT5_4"}
TEXTURES = {"wall": "STARTAN3", "lava_wall": "BRICK7", "boss_wall": "SKIN2", "step": "STEP1"}

_LAVA_SPECIAL = 5            # Doom sector type 5: 10 damage every 32 tics; the radiation suit protects
_SKILLS_ALL = 1 | 2 | 4      # thing flags: easy, medium, hard
_AMBUSH = 8                  # thing flag: deaf ("ambush") monster
_IMPASSABLE, _BLOCK_MONSTERS, _TWO_SIDED, _LOWER_UNPEGGED = 1, 2, 4, 16
_NORTH, _EAST, _SOUTH, _WEST = 90, 0, 270, 180


def _polygon(rect: Rect, *, north: tuple[int, ...] = (), south: tuple[int, ...] = ()) -> list:
    """The rectangle's corners clockwise (interior on the right of each edge, as Doom wants),
    with extra vertices at the given x positions on the north and south edges (so that a
    neighbour's edge meets vertex to vertex)."""
    top = [(x, rect.y1) for x in sorted({rect.x0, *north, rect.x1})]
    bottom = [(x, rect.y0) for x in sorted({rect.x0, *south, rect.x1}, reverse=True)]
    return top + bottom


class _MapBuilder:
    """Sectors from clockwise polygons; an edge drawn by two sectors becomes one two-sided line."""

    def __init__(self) -> None:
        from omg.mapedit import MapEditor

        self.editor = MapEditor()
        self._vertices: dict[tuple[int, int], int] = {}
        self._lines: dict[tuple[int, int], int] = {}

    def _vertex(self, point: tuple[int, int]) -> int:
        from omg.mapedit import Vertex

        if point not in self._vertices:
            self._vertices[point] = len(self.editor.vertexes)
            self.editor.vertexes.append(Vertex(x=point[0], y=point[1]))
        return self._vertices[point]

    def sector(self, polygon: list[tuple[int, int]], *, floor: int, ceiling: int, floor_flat: str,
               wall: str, light: int = 192, special: int = 0) -> int:
        from omg.mapedit import Linedef, Sector, Sidedef

        index = len(self.editor.sectors)
        self.editor.sectors.append(Sector(z_floor=floor, z_ceil=ceiling, tx_floor=floor_flat,
                                          tx_ceil=FLATS["ceiling"], light=light, type=special))
        for a, b in zip(polygon, polygon[1:] + polygon[:1]):
            va, vb = self._vertex(a), self._vertex(b)
            side = len(self.editor.sidedefs)
            twin = self._lines.get((vb, va))
            if twin is None:
                self.editor.sidedefs.append(Sidedef(tx_mid=wall, sector=index))
                self._lines[(va, vb)] = len(self.editor.linedefs)
                self.editor.linedefs.append(Linedef(vx_a=va, vx_b=vb, front=side,
                                                    flags=_IMPASSABLE))
            else:   # the other sector drew this edge: make it a two-sided line between them
                line = self.editor.linedefs[twin]
                front = self.editor.sidedefs[line.front]
                self.editor.sidedefs.append(Sidedef(tx_up=wall, tx_low=wall, sector=index))
                front.tx_up, front.tx_low, front.tx_mid = front.tx_mid, front.tx_mid, "-"
                line.back = side
                line.flags = _TWO_SIDED | _LOWER_UNPEGGED
        return index

    def block_monsters(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        """Monsters may not cross the (two-sided) line from ``a`` to ``b`` (either direction)."""
        va, vb = self._vertices[a], self._vertices[b]
        line = self.editor.linedefs[self._lines.get((va, vb), self._lines.get((vb, va)))]
        line.flags |= _BLOCK_MONSTERS

    def thing(self, kind: str, position: tuple[int, int], angle: int, flags: int = 0) -> None:
        from omg.mapedit import Thing

        self.editor.things.append(Thing(x=position[0], y=position[1], angle=angle,
                                        type=THING_TYPES[kind], flags=_SKILLS_ALL | flags))


def build_map():
    """The map as an omgifol ``MapEditor`` (sectors, lines, things; no nodes)."""
    door_x = (DOORWAY.x0, DOORWAY.x1)
    builder = _MapBuilder()
    builder.sector(_polygon(START_ROOM), floor=0, ceiling=128, floor_flat=FLATS["floor"],
                   wall=TEXTURES["wall"])
    builder.sector(_polygon(LAVA, north=door_x), floor=-8, ceiling=128, floor_flat=FLATS["lava"],
                   wall=TEXTURES["lava_wall"], light=208, special=_LAVA_SPECIAL)
    builder.sector(_polygon(DOORWAY), floor=0, ceiling=128, floor_flat=FLATS["door_floor"],
                   wall=TEXTURES["step"])
    builder.sector(_polygon(BOSS_ROOM, south=door_x), floor=0, ceiling=192,
                   floor_flat=FLATS["boss_floor"], wall=TEXTURES["boss_wall"], light=176)
    builder.block_monsters((DOORWAY.x0, DOORWAY.y1), (DOORWAY.x1, DOORWAY.y1))
    builder.thing("player1_start", PLAYER_START, _NORTH)
    builder.thing("radiation_suit", SUIT_POSITION, _NORTH)
    builder.thing("plasma_gun", GUN_POSITION, _NORTH)
    builder.thing("cell_charge", CELLS_POSITION, _NORTH)
    builder.thing("hell_knight", BOSS_POSITION, _WEST, flags=_AMBUSH)
    return builder.editor


def build_wad(map_name: str = "MAP01") -> bytes:
    """The bytes of a PWAD holding the map as ``map_name`` (deterministic)."""
    import omg

    wad = omg.WAD()
    wad.maps[map_name] = build_map().to_lumps()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "map.wad"
        wad.to_file(str(path))
        return path.read_bytes()


def main(path: str | None = None) -> Path:
    """Write the WAD next to this module (or to ``path``) atomically; return the path."""
    from safeguards.files import write_atomic

    target = Path(path) if path else Path(__file__).with_name("safe_rl.wad")
    write_atomic(target, build_wad())
    return target


if __name__ == "__main__":
    print(main())
