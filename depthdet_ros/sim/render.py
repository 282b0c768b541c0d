"""Offscreen MuJoCo rendering: a colour pass, and a label pass giving geom ids and z-depth.

The label pass draws every geom in a flat colour encoding its index in the scene
(MuJoCo's segmentation mode, no anti-aliasing) and reads the depth buffer of the
same pass, so ids and depth agree pixel for pixel.
"""
import os
import weakref

import mujoco
import numpy as np

# Geom group that holds hidden geoms (MjvOption shows groups 0-4 only).
HIDDEN_GROUP = 5


def _free(gl_context, mjr_context):
    gl_context.make_current()
    mjr_context.free()
    gl_context.free()


class OffscreenRenderer:
    """Renders the model's first camera into images up to max_width x max_height."""

    def __init__(self, model: mujoco.MjModel, max_width: int, max_height: int,
                 max_geom: int = 2000):
        if max_width > model.vis.global_.offwidth or max_height > model.vis.global_.offheight:
            raise ValueError('the model\'s offscreen buffer is smaller than the requested size')
        self.model = model
        self.max_width, self.max_height = max_width, max_height
        try:
            self._gl = mujoco.GLContext(max_width, max_height)
            self._gl.make_current()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        except mujoco.FatalError as exc:
            raise RuntimeError(
                f'MuJoCo could not open an offscreen OpenGL context '
                f'(MUJOCO_GL={os.environ.get("MUJOCO_GL")!r}): {exc}. Run '
                'tools/setup_system.sh (libosmesa6) and import depthdet_ros.sim before '
                'mujoco, or set MUJOCO_GL=osmesa.') from exc
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        # Reversed z (1 at the near plane, 0 at the far one): float depth keeps
        # sub-millimetre resolution out to the far plane.
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self.scene = mujoco.MjvScene(model, maxgeom=max_geom)
        self.option = mujoco.MjvOption()
        self.option.geomgroup[:] = 1
        self.option.geomgroup[HIDDEN_GROUP] = 0
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self.camera.fixedcamid = 0
        extent = model.stat.extent
        self.z_near = float(model.vis.map.znear * extent)
        self.z_far = float(model.vis.map.zfar * extent)
        self._finalizer = weakref.finalize(self, _free, self._gl, self._context)

    def close(self):
        """Free the GL context (also done at exit)."""
        self._finalizer()

    def update_scene(self, data: mujoco.MjData):
        """Collect the visible geoms from `data` (call after the model arrays change)."""
        mujoco.mjv_updateScene(self.model, data, self.option, None, self.camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self.scene)

    def _rect(self, width, height):
        if width > self.max_width or height > self.max_height:
            raise ValueError(f'{width}x{height} exceeds the renderer\'s '
                             f'{self.max_width}x{self.max_height}')
        return mujoco.MjrRect(0, 0, width, height)

    def render_color(self, width: int, height: int) -> np.ndarray:
        """HxWx3 uint8 RGB of the current scene."""
        rect = self._rect(width, height)
        self._gl.make_current()
        mujoco.mjr_render(rect, self.scene, self._context)
        rgb = np.empty((height, width, 3), dtype=np.uint8)
        mujoco.mjr_readPixels(rgb, None, rect, self._context)
        return np.ascontiguousarray(rgb[::-1])  # GL rows run bottom-up

    def render_labels(self, width: int, height: int, with_depth: bool = True, window=None):
        """(geom ids, depth) of the current scene.

        geom ids: HxW int32 model geom id, -1 where nothing was drawn. depth: HxW
        float32 z in metres along the optical axis, NaN where nothing was drawn; None
        unless `with_depth`. `window` = (x1, y1, x2, y2) integer pixels renders only
        that part of the width x height image, on the same pixel grid.
        """
        x1, y1, x2, y2 = window or (0, 0, width, height)
        if window is not None:
            self._crop_frustum(width, height, window)
        width, height = x2 - x1, y2 - y1
        rect = self._rect(width, height)
        flags = self.scene.flags
        saved = flags.copy()
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
        flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        try:
            self._gl.make_current()
            mujoco.mjr_render(rect, self.scene, self._context)
            colour = np.empty((height, width, 3), dtype=np.uint8)
            depth_buffer = np.empty((height, width), dtype=np.float32) if with_depth else None
            mujoco.mjr_readPixels(colour, depth_buffer, rect, self._context)
        finally:
            flags[:] = saved
        # IDCOLOR writes (scene geom index + 1) as 24-bit little-endian RGB; 0 = nothing.
        segment = colour[::-1, :, 0].astype(np.int32)
        segment |= colour[::-1, :, 1].astype(np.int32) << 8
        segment |= colour[::-1, :, 2].astype(np.int32) << 16
        geom_ids = self._segment_to_geom()[segment]
        if depth_buffer is None:
            return geom_ids, None
        return geom_ids, self._metric_depth(depth_buffer[::-1], geom_ids < 0)

    def _crop_frustum(self, width, height, window):
        # Shift and shrink the near-plane window so the viewport covers only `window`
        # at the full image's pixel size (MuJoCo derives the horizontal extent from
        # the viewport's aspect ratio and frustum_center).
        x1, y1, x2, y2 = window
        for eye in self.scene.camera:
            pixel = (eye.frustum_top - eye.frustum_bottom) / height
            top = eye.frustum_top
            eye.frustum_top = top - y1 * pixel
            eye.frustum_bottom = top - y2 * pixel
            eye.frustum_center += (0.5 * (x1 + x2) - 0.5 * width) * pixel

    def _segment_to_geom(self) -> np.ndarray:
        lut = np.full(self.scene.ngeom + 1, -1, dtype=np.int32)
        geom_type = int(mujoco.mjtObj.mjOBJ_GEOM)
        for index in range(self.scene.ngeom):
            geom = self.scene.geoms[index]
            if geom.objtype == geom_type and geom.segid >= 0:
                lut[geom.segid + 1] = geom.objid
        return lut

    def _metric_depth(self, buffer, empty) -> np.ndarray:
        # Invert the reversed-z perspective mapping: d = 1 at z_near, 0 at z_far.
        near, far = self.z_near, self.z_far
        depth = (near * far / (near + buffer.astype(np.float64) * (far - near))).astype(np.float32)
        depth[empty] = np.nan
        return depth

    def upload_texture(self, texture_id: int):
        """Send the model's current tex_data of one texture to the GL context."""
        self._gl.make_current()
        mujoco.mjr_uploadTexture(self.model, self._context, texture_id)
