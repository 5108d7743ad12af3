from stackling.db.env_template import run
from stackling.volume.models import Base

run(Base.metadata)
