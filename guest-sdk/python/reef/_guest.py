"""The `reef:runtime/guest` export for componentize-py.

The entry module that ``build.sh`` generates imports the user's ``app`` module
(which registers tasks and actors with the decorators) and then this class as
``Guest``, the name componentize-py looks for.
"""

import reef as _reef
from wit_world import exports as _exports


class Guest(_exports.Guest):
    def describe(self):
        return _reef._describe()

    def run_task(self, name, args):
        return _reef._guarded(_reef._run_task, name, args)

    def actor_init(self, class_, args):
        return _reef._guarded(_reef._actor_init, class_, args)

    def actor_call(self, method, args):
        return _reef._guarded(_reef._actor_call, method, args)
