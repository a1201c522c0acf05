"""Stand-ins for the hub's user objects where a spawner is built without a hub (manifest tests)."""


class Group:
    def __init__(self, name):
        self.name = name


class User:
    def __init__(self, name, groups=()):
        self.name, self.id, self.url = name, 1, f"/user/{name}/"
        self.groups = [Group(g) for g in groups]
