"""Projects, git and coverage: `panel serve dashboards/projects.py` (served by
`observatory serve`)."""

from workbench.models.projects import ProjectsModel
from workbench.views.control_page import session_principal
from workbench.views.page import serve
from workbench.views.projects import ProjectsDashboard

serve("Happy Observatory · Projects",
      lambda store: ProjectsDashboard(
          model=ProjectsModel(store=store, cache=ProjectsDashboard.frames(store)),
          principal=session_principal()).template())
