"""Annotated images: boxes labelled as the markers are ("class 1.23 m #7"), alerts in red."""
import cv2

from depthdet_ros.ros.message_layout import label_text

COLOR_OK = (40, 200, 40)
COLOR_ALERT = (230, 30, 30)


def draw_objects(rgb, objects):
    """Return a copy of the RGB image with each OutputObject (as published) drawn on it."""
    canvas = rgb.copy()
    scale = max(0.4, min(rgb.shape[:2]) / 800.0)
    thickness = max(1, int(round(2 * scale)))
    for obj in objects:
        box = obj.detection.box
        color = COLOR_ALERT if obj.alert else COLOR_OK
        p1 = (int(round(box.x1)), int(round(box.y1)))
        p2 = (int(round(box.x2)), int(round(box.y2)))
        cv2.rectangle(canvas, p1, p2, color, thickness)
        label = label_text(obj)
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
        top = max(p1[1] - th - base - 2, 0)
        cv2.rectangle(canvas, (p1[0], top), (p1[0] + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(canvas, label, (p1[0] + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
