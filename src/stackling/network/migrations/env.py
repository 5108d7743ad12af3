from stackling.db.env_template import run
from stackling.network.models import Base

run(Base.metadata)
