-- NVIDIA repo_build entry point (kit-app-template conventions): `./repo.sh build` links our exts/ into the
-- build and generates a launcher for the SDG Studio app. `make demo` / `make test` do not use it.
repo_build = require("omni/repo/build")

root = repo_build.get_abs_path(".")

kit = require("_repo/deps/repo_kit_tools/kit-template/premake5-kit")
kit.setup_all({ cppdialect = "C++17" })

-- Our extensions live in exts/ (the Isaac Sim layout); link them next to the app's own extension folders.
repo_build.prebuild_link {
    { "%{root}/exts", "%{root}/_build/%{platform}/%{config}/exts" },
}

-- The app: Isaac Sim plus SDG Studio's extensions (source/apps/sdgstudio.isaacsim.kit).
define_app("sdgstudio.isaacsim.kit")
