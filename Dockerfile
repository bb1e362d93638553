# modelshelf container image.
#
#   docker build -t modelshelf .
#   docker run -p 127.0.0.1:8080:8080 -v modelshelf-data:/data modelshelf
#
# BASE_IMAGE must provide Python 3.11 with the venv module. The default is the official
# python:3.11-slim pinned by digest, so every build starts from the same bytes; to move to a newer
# one, replace the digest (`docker buildx imagetools inspect python:3.11-slim` prints it).
# On machines that reach no container registry, build a stand-in from Debian's packages with
# .ci/make-base-image (debootstrap, root and a docker daemon) and pass
# --build-arg BASE_IMAGE=local/python:3.11-slim (plus --network host).
# Builder and final stage use the same base, so the venv's interpreter path matches.
# Written for the classic builder as well as BuildKit: no BuildKit-only syntax.
ARG BASE_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# Dependencies first, from the lock file (exact versions, every file checked against its sha256),
# so that a change in src/ alone reuses this layer. pyvips[binary] is a wheel that bundles libvips:
# nothing to compile, no system libvips needed. The build backend goes into a venv of its own that
# the final image does not get.
COPY requirements/runtime.txt requirements/build.txt ./requirements/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes -r requirements/build.txt

# The project itself: a wheel built with the locked backend, installed without dependencies (they
# are all in already; `pip check` proves it). Then drop the installers from the venv (about 25 MB):
# nothing at run time needs pip, setuptools or pkg_resources.
COPY pyproject.toml README.md LICENSE ./
COPY src/ ./src/
ENV PATH=/opt/venv/bin:$PATH
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /build/dist . \
 && pip install --no-deps /build/dist/modelshelf-*.whl \
 && pip check \
 && modelshelf --help >/dev/null \
 && python -m pip uninstall --yes --quiet pip setuptools \
 && python -c "import modelshelf.app, pyvips, aiohttp, aiosqlite, pydantic, tqdm, aiohttp_remotes, filelock" \
 && python -c "from modelshelf.web.ui_api import UI_FOLDER; import sys; sys.exit(not (UI_FOLDER / 'index.html').is_file())"

# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS final

LABEL org.opencontainers.image.title="modelshelf" \
      org.opencontainers.image.description="Model library service (aiohttp): models, tags, example images, legacy migration"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODELSHELF_DATA_DIR=/data \
    MODELSHELF_HOST=0.0.0.0 \
    MODELSHELF_PORT=8080 \
    MODELSHELF_CONFIG_DIR=/app/config

# Fixed uid/gid so that bind-mounted data dirs can be prepared on the host (chown -R 10001 DIR).
RUN groupadd --system --gid 10001 modelshelf \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin modelshelf \
 && mkdir -p /app /data \
 && chown modelshelf:modelshelf /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY config/ /app/config/

USER 10001:10001

# A new named volume takes the ownership of /data from the image (uid 10001).
VOLUME /data
EXPOSE 8080

# No curl in slim images: ask with the interpreter that is already there, at the address, port
# and path prefix the server's own settings give (config files and MODELSHELF_* alike; flags
# given after `serve` are not seen: set those by environment).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import json, sys, urllib.request; from modelshelf.config import load_settings; s = load_settings(); h = '127.0.0.1' if s.host in ('0.0.0.0', '::', '') else s.host; h = f'[{h}]' if ':' in h else h; r = urllib.request.urlopen(f'http://{h}:{s.port}{s.path_prefix}/api/health', timeout=4); sys.exit(0 if r.status == 200 and json.load(r).get('status') == 'ok' else 1)"]

# The server handles SIGTERM itself: in-flight requests finish, then it exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["modelshelf"]
CMD ["serve"]
