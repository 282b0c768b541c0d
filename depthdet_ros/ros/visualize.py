"""Annotated images: boxes labelled "class 1.23 m", alerts in red."""
import cv2

COLOR_OK = (40, 200, 40)
COLOR_ALERT = (230, 30, 30)


def draw_objects(rgb, objects):
    """Return a copy of the RGB image with each core ObjectEstimate drawn on it."""
    canvas = rgb.copy()
    scale = max(0.4, min(rgb.shape[:2]) / 800.0)
    thickness = max(1, int(round(2 * scale)))
    for obj in objects:
        box = obj.detection.box
        color = COLOR_ALERT if obj.alert else COLOR_OK
        p1 = (int(round(box.x1)), int(round(box.y1)))
        p2 = (int(round(box.x2)), int(round(box.y2)))
        cv2.rectangle(canvas, p1, p2, color, thickness)
        depth = f'{obj.depth.depth:.2f} m' if obj.depth.valid else '? m'
        label = f'{obj.detection.class_name} {depth}'
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(canvas, label, (p1[0] + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
