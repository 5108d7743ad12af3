from stackling.db.env_template import run
from stackling.identity.models import Base

run(Base.metadata)
