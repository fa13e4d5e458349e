"""nbgrader configuration of the course "Deep CNNs and the ventral visual stream".

nbgrader reads this file whenever it runs in this folder (the course root): the command line, the
formgrader, and ``course-tools``. The exchange that students and instructors share on a JupyterHub
is set for everyone in ``hub/everyone/nbgrader_config.py`` (see book/instructor_guide.md).
"""

from course_tools.grading.conventions import configure_grading

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

c.CourseDirectory.course_id = "neuroai-ventral-stream"

# Seconds each cell may run while autograding. Assignments run in under five minutes on the hub's
# two cores; the slowest solution cell (retina_cnn's held-out training) needs about 14 CPU-seconds,
# and took 56 s of wall time on a machine loaded about 5x. 120 s leaves room for slower but
# correct student code on a busy hub (`course-tools check` reports the slowest cell). An endless
# loop costs this much once per affected cell.
c.Execute.timeout = 120

# The grading settings every course of this kit shares (see its docstring): a dead kernel costs
# only the cells that need it; references.npz and mutants.py never reach students, also through
# the formgrader's buttons; feedback hides the hidden tests.
configure_grading(c)
