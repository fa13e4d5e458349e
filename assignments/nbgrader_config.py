"""nbgrader configuration of the course "Deep CNNs and the ventral visual stream".

nbgrader reads this file whenever it runs in this folder (the course root): the command line, the
formgrader, and ``course-tools``. Settings for a JupyterHub exchange are in the instructor guide
(book/instructor_guide.md); put those in the hub's ``/etc/jupyter/nbgrader_config.py``.
"""

from course_tools.grading.conventions import autograde_preprocessors, release_ignore_patterns

c = get_config()  # noqa: F821 (nbgrader provides get_config when it loads this file)

c.CourseDirectory.course_id = "neuroai-ventral-stream"

# Seconds each cell may run while autograding. Assignments run in under five minutes on the hub's
# two cores, and no single cell of a solution may need more than half of this (`course-tools
# check` verifies it), so slower but correct student code still finishes. An endless loop costs
# this much once per affected cell.
c.Execute.timeout = 60

# A kernel that dies (os._exit, a segfault, out of memory) costs only the cells that need it;
# plain nbgrader would give the whole submission nothing.
c.Autograde.autograde_preprocessors = autograde_preprocessors()

# references.npz and mutants.py stay out of the release (and the feedback) but autograde still
# copies them in. A plain CourseDirectory.ignore would hide them from autograde as well.
c.GenerateAssignmentApp.CourseDirectory.ignore = release_ignore_patterns()
c.GenerateFeedbackApp.CourseDirectory.ignore = release_ignore_patterns()
# The same for the formgrader's buttons, which do not read the app-scoped settings above.
c.GenerateAssignment.post_convert_hook = "course_tools.grading.hooks.remove_instructor_files"
c.GenerateFeedback.post_convert_hook = "course_tools.grading.hooks.remove_instructor_files"

# Feedback shows the visible part of each test cell only: hidden tests, their tracebacks and
# anything they printed are removed (nbgrader shows them by default).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "course_tools.grading.feedback.HideHiddenTests",
]
