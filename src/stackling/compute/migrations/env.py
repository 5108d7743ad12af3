from stackling.compute.models import Base
from stackling.db.env_template import run

run(Base.metadata)
