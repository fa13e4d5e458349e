"""nbgrader settings every user of the course hub shares: the course id and the exchange folder.

The hub puts this folder on each server's ``JUPYTER_CONFIG_PATH`` (``hub/jupyterhub_config.py``), so
students' and instructors' nbgrader commands, the *Assignments* list and the formgrader all
release to and fetch from the same place. Without the hub, put this file in
``/etc/jupyter/nbgrader_config.py`` or point ``JUPYTER_CONFIG_PATH`` at this folder.

The instructor's course folder (``assignments/nbgrader_config.py``) is read after this file and
sets the same course id.
"""

import os

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

c.CourseDirectory.course_id = os.environ.get("COURSE_ID", "neuroai-ventral-stream")
# Created once by an administrator, writable by everyone (see hub/README.md).
c.Exchange.root = os.environ.get("COURSE_EXCHANGE", "/srv/nbgrader/exchange")
# Only when one hub serves several nbgrader courses:
# c.Exchange.path_includes_course = True
