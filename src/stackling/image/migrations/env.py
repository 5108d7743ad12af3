from stackling.db.env_template import run
from stackling.image.models import Base

run(Base.metadata)
