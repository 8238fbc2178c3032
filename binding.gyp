{
  "targets": [
    {
      "target_name": "openkvs",
      "sources": [
        "native/addon.cpp",
        "native/bus-message.cpp",
        "native/gst-loop.cpp",
        "native/pipeline.cpp",
        "native/video-decoder.cpp",
        "gst-plugin/src/gstkvssink.cpp",
        "gst-plugin/src/bus_messages.cpp",
        "<!@(ls -1 gst-plugin/src/kvs/*.cpp)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "gst-plugin/src",
        "native"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "<!@(pkg-config --cflags gstreamer-1.0 gstreamer-base-1.0 gstreamer-app-1.0 gstreamer-video-1.0 libcurl openssl)"
      ],
      "libraries": [
        "<!@(pkg-config --libs gstreamer-1.0 gstreamer-base-1.0 gstreamer-app-1.0 gstreamer-video-1.0 libcurl libcrypto)"
      ]
    }
  ]
}
