"""For test nodes: whether an address lies in a dora-ts shared-memory segment mapped by this process."""


def mapped_from_shm(address: int) -> bool:
    with open("/proc/self/maps") as maps:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= address < hi:
                return "/dev/shm/dora-ts-" in line
    return False
